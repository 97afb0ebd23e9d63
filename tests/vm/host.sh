# SPDX-License-Identifier: LGPL-2.1-or-later
# Host-side helpers shared by tests/vm/setup, run, check and selftest. Sourced, not run.
# The caller sets vm_top (the repository's top folder) before sourcing.
# shellcheck shell=bash

vm_dir=$vm_top/tests/vm
# The cache lives in the checkout so a CI clone has its own; `make clean` leaves build/vm alone.
vm_cache=${KEYSCOPE_VM_CACHE:-$vm_top/build/vm}
# What the harness needs on the host. xz-utils unpacks vmlinux; systemd is PID 1 in --systemd mode.
vm_packages="qemu-system-x86 busybox-static udev lvm2 cryptsetup-bin keyutils xz-utils systemd"
vm_qemu=${KEYSCOPE_VM_QEMU:-qemu-system-x86_64}
vm_busybox=/bin/busybox

vm_msg() { printf 'tests/vm: %s\n' "$*" >&2; }

# vm_kernel_abi: print the ABI of the cached kernel (e.g. 6.1.0-56-amd64); 1 if there is none.
vm_kernel_abi() {
	local abi
	[ -r "$vm_cache/kernel/current" ] || return 1
	abi=$(cat "$vm_cache/kernel/current") || return 1
	[ -n "$abi" ] && [ -e "$vm_cache/kernel/$abi/.complete" ] || return 1
	printf '%s\n' "$abi"
}

# vm_kernel_image ABI: the image to boot. The uncompressed vmlinux boots through its PVH entry,
# which skips the real-mode setup and decompression (about 2 s less under TCG).
vm_kernel_image() {
	local k=$vm_cache/kernel/$1
	if [ -s "$k/vmlinux" ]; then
		printf '%s\n' "$k/vmlinux"
	else
		printf '%s\n' "$k/boot/vmlinuz-$1"
	fi
}

# vm_preflight: 0 if qemu, busybox and a cached kernel are there; otherwise say what to do.
vm_preflight() {
	local ok=0
	if ! command -v "$vm_qemu" >/dev/null 2>&1; then
		vm_msg "$vm_qemu not found: install the Debian package qemu-system-x86 (tests/vm/setup does)"
		ok=1
	fi
	if [ ! -x "$vm_busybox" ]; then
		vm_msg "$vm_busybox not found: install the Debian package busybox-static (tests/vm/setup does)"
		ok=1
	fi
	if ! vm_kernel_abi >/dev/null; then
		vm_msg "no guest kernel in $vm_cache: run tests/vm/setup (downloads the Debian linux-image package)"
		ok=1
	fi
	return $ok
}

# vm_mod_index MODDIR: fill vm_mod_path[name] with the path of every module file under MODDIR.
vm_mod_index() {
	local f n
	declare -gA vm_mod_path=()
	while IFS= read -r f; do
		n=${f##*/}
		n=${n%.xz}
		n=${n%.ko}
		vm_mod_path[${n//-/_}]=$f
	done < <(find "$1/kernel" -name '*.ko' -o -name '*.ko.xz')
}

# vm_mod_info FILE KEY: print the values of KEY in the module's .modinfo section.
vm_mod_info() {
	case $1 in
	*.xz) xz -dc -- "$1" ;;
	*) cat -- "$1" ;;
	esac | tr '\0' '\n' | LC_ALL=C grep -a "^$2=" | cut -d= -f2-
}

# vm_mod_visit NAME [optional]: append NAME after its dependencies to vm_mod_order.
# Hard dependencies must exist (or be built in); `softdep=pre:` ones are taken when present.
vm_mod_visit() {
	local n=${1//-/_} f d soft
	[ -n "${vm_mod_seen[$n]-}" ] && return 0
	vm_mod_seen[$n]=1
	f=${vm_mod_path[$n]-}
	if [ -z "$f" ]; then
		[ -n "${vm_mod_builtin[$n]-}" ] && return 0
		[ "${2-}" = optional ] && return 0
		vm_msg "kernel module $1 not found in the guest kernel"
		return 1
	fi
	for d in $(vm_mod_info "$f" depends | tr ',' ' '); do
		vm_mod_visit "$d" || return 1
	done
	soft=$(vm_mod_info "$f" softdep | sed -n 's/^pre: *//; s/ *post:.*//p')
	for d in $soft; do
		vm_mod_visit "$d" optional || return 1
	done
	vm_mod_order+=("$n")
}

# vm_systemd_skel DIR: lay out in DIR what the --systemd guest's init copies to /run: the test's
# units, the tmpfiles override, and a /dev/null symlink for each unit or generator in
# tests/vm/systemd/masked. /run keeps them out of the 9p overlay, and systemd reads /run/systemd/.
vm_systemd_skel() {
	local s=$vm_dir/systemd u
	mkdir -p "$1/systemd/system" "$1/systemd/system-generators" "$1/tmpfiles.d" || return 1
	cp "$s/keyscope-vm.target" "$s/keyscope-vm-test.service" "$1/systemd/system/" || return 1
	cp "$s/tmp.conf" "$1/tmpfiles.d/" || return 1
	while read -r u _; do
		case $u in
		'' | '#'*) ;;
		*-generator) ln -s /dev/null "$1/systemd/system-generators/$u" ;;
		*) ln -s /dev/null "$1/systemd/system/$u" ;;
		esac
	done < "$s/masked"
}

# vm_initramfs ABI: print the path of the initramfs for ABI, (re)building it when the init
# script, the module list or busybox changed. Uses busybox cpio: the host has no cpio.
vm_initramfs() {
	local abi=$1 k=$vm_cache/kernel/$1 out=$vm_cache/initramfs-$1.cpio want st m n f
	local moddir=$vm_cache/kernel/$1/lib/modules/$1
	want=$( {
		cat "$vm_dir/init" "$vm_dir/modules" "$vm_dir"/systemd/* "$vm_dir/host.sh"
		ls -l "$vm_busybox"
	} | cksum)
	if [ -s "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$want" ]; then
		printf '%s\n' "$out"
		return 0
	fi
	[ -d "$moddir/kernel" ] || { vm_msg "no modules in $k: run tests/vm/setup"; return 1; }
	vm_mod_index "$moddir"
	declare -gA vm_mod_seen=() vm_mod_builtin=()
	vm_mod_order=()
	while IFS= read -r m; do
		m=${m##*/}
		m=${m%.ko}
		vm_mod_builtin[${m//-/_}]=1
	done < "$moddir/modules.builtin"
	while read -r m _; do
		case $m in '' | '#'*) continue ;; esac
		vm_mod_visit "$m" || return 1
	done < "$vm_dir/modules"

	# A folder and an output of our own: two runs may build at once (make check in parallel).
	st=$(mktemp -d "$vm_cache/initramfs.XXXXXX") || return 1
	local r=$st/root
	mkdir -p "$r/bin" "$r/modules" "$r/dev" "$r/proc" "$r/sys" "$r/lower" "$r/rw" \
		"$r/newroot" "$r/results"
	cp "$vm_busybox" "$r/bin/busybox"
	cp "$vm_dir/init" "$r/init"
	chmod 755 "$r/init"
	for n in "${vm_mod_order[@]}"; do
		f=${vm_mod_path[$n]}
		case $f in
		*.xz) xz -dc -- "$f" > "$r/modules/$n.ko" ;;
		*) cp -- "$f" "$r/modules/$n.ko" ;;
		esac
		printf '%s\n' "$n" >> "$r/modules/order"
	done
	vm_systemd_skel "$r/skel" || { rm -rf "$st"; return 1; }
	(cd "$st/root" && find . | "$vm_busybox" cpio -o -H newc 2>/dev/null) > "$st/cpio" || {
		vm_msg "building the initramfs with busybox cpio failed"
		rm -rf "$st"
		return 1
	}
	mv "$st/cpio" "$out"
	printf '%s\n' "$want" > "$st/stamp" && mv "$st/stamp" "$out.stamp"
	rm -rf "$st"
	printf '%s\n' "$out"
}

# vm_accel ABI: set vm_accel_args to KVM's or TCG's qemu arguments. KEYSCOPE_VM_KVM=0 means TCG,
# 1 means KVM (an error if /dev/kvm is not usable), auto (the default) probes once: a /dev/kvm
# can exist and still not run this kernel (nested PVM: qemu aborts on MSR 0x10a with -cpu host,
# and other CPU models crawl), so KVM must bring the kernel to its first panic within 10 s.
# The verdict is cached in build/vm/kvm-probe for this host kernel and guest kernel.
vm_accel() {
	local abi=$1 want=${KEYSCOPE_VM_KVM:-auto} key verdict f=$vm_cache/kvm-probe
	vm_accel_args=(-accel tcg,thread=multi -cpu max)
	case $want in
	0 | no) return 0 ;;
	1 | yes)
		[ -w /dev/kvm ] || { vm_msg "KEYSCOPE_VM_KVM=1 but /dev/kvm is missing or not writable"; return 1; }
		vm_accel_args=(-accel kvm -cpu host)
		return 0 ;;
	auto) ;;
	*) vm_msg "KEYSCOPE_VM_KVM is 0, 1 or auto, not '$want'"; return 1 ;;
	esac
	[ -w /dev/kvm ] || return 0
	key="$(uname -r) $abi"
	if [ "$(head -n 1 "$f" 2>/dev/null)" = "$key" ]; then
		verdict=$(sed -n 2p "$f")
	else
		vm_msg "probing KVM (once; KEYSCOPE_VM_KVM=0 or 1 skips this)"
		verdict=no
		if timeout 10 "$vm_qemu" -accel kvm -cpu host -m 256 -smp 1 -nographic -no-reboot \
			-nodefaults -serial stdio -kernel "$(vm_kernel_image "$abi")" \
			-append "console=ttyS0 panic=-1 loglevel=1" </dev/null 2>/dev/null |
			grep -q 'Kernel panic'; then
			verdict=yes
		fi
		printf '%s\n%s\n' "$key" "$verdict" > "$f"
		[ $verdict = yes ] || vm_msg "KVM cannot boot the guest kernel on this machine: using TCG"
	fi
	[ "$verdict" = yes ] && vm_accel_args=(-accel kvm -cpu host)
	return 0
}
