#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# p6-gpt.py IMAGE COUNT SIZE_MIB LAST_MIB: writes a GUID partition table (UEFI spec, chapter 5)
# on the raw image IMAGE, sized to hold COUNT partitions of SIZE_MIB MiB named p6-1 ...
# p6-COUNT and one more of LAST_MIB MiB named p6-aux, 1 MiB aligned, each of type "Linux
# filesystem". Prints "NAME PARTUUID FIRST-SECTOR SECTORS" per partition (512-byte sectors). The host has no sfdisk or sgdisk, and
# the benchmark wants more partitions (up to 255) than their default table of 128 entries.
import os
import struct
import sys
import uuid
import zlib

SECTOR = 512
ENTRIES = 256
ENTRY_SIZE = 128
LINUX_FS = uuid.UUID("0fc63daf-8483-4772-8e79-3d69d8477de4")
MIB = 1024 * 1024 // SECTOR


def entry(first, last, name, guid):
    label = name.encode("utf-16-le").ljust(72, b"\0")
    return struct.pack("<16s16sQQQ72s", LINUX_FS.bytes_le, guid.bytes_le, first, last, 0, label)


def header(current, backup, first_usable, last_usable, disk, table_lba, table_crc):
    def pack(crc):
        return struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, crc, 0,
                           current, backup, first_usable, last_usable, disk.bytes_le,
                           table_lba, ENTRIES, ENTRY_SIZE, table_crc)
    h = pack(zlib.crc32(pack(0)))
    return h.ljust(SECTOR, b"\0")


def protective_mbr(sectors):
    mbr = bytearray(SECTOR)
    size = min(sectors - 1, 0xFFFFFFFF)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, size)
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: p6-gpt.py IMAGE COUNT SIZE_MIB LAST_MIB")
    image = sys.argv[1]
    count, size, last_size = (int(a) for a in sys.argv[2:5])
    if not 1 <= count <= ENTRIES - 1 or size < 1 or last_size < 1:
        sys.exit("p6-gpt.py: COUNT 1-%d, sizes >= 1 MiB" % (ENTRIES - 1))
    table_sectors = ENTRIES * ENTRY_SIZE // SECTOR
    sectors = (1 + count * size + last_size + 1) * MIB
    parts, lba = [], MIB
    for i in range(count):
        parts.append(("p6-%d" % (i + 1), lba, size * MIB))
        lba += size * MIB
    parts.append(("p6-aux", lba, last_size * MIB))
    table = b""
    for name, first, length in parts:
        guid = uuid.uuid4()
        table += entry(first, first + length - 1, name, guid)
        print(name, guid, first, length)
    table = table.ljust(ENTRIES * ENTRY_SIZE, b"\0")
    crc = zlib.crc32(table)
    last_lba = sectors - 1
    first_usable, last_usable = 2 + table_sectors, last_lba - 1 - table_sectors
    disk = uuid.uuid4()
    with open(image, "wb") as f:
        f.truncate(sectors * SECTOR)
        f.write(protective_mbr(sectors))
        f.write(header(1, last_lba, first_usable, last_usable, disk, 2, crc))
        f.write(table)
        f.seek((last_usable + 1) * SECTOR)
        f.write(table)
        f.write(header(last_lba, 1, first_usable, last_usable, disk, last_usable + 1, crc))
        os.fsync(f.fileno())


main()
