# SPDX-License-Identifier: LGPL-2.1-or-later
"""A thin os-brick VolumeEncryptor over keyscopectl (docs/openstack.md).

keyscoped opens the volume: a dm-crypt table that names the kernel logon key of the volume's
scope, so every later attach of the volume or of its snapshots skips the key derivation.
The key reaches keyscoped in one of two ways (option "keys" of /etc/keyscope/os-brick.conf):

  supplied   (default; today's Nova, whose keys Barbican gives to the user's token only)
             the key from the key manager, as os-brick gets it, goes to keyscopectl on its
             standard input and from there to keyscoped as the request's payload, for that
             one call; keyscoped never stores it.
  delegated  the node is delegated the key (Barbican read ACL): keyscoped fetches it with its
             own identity and the key manager is never asked here.

Nothing here writes, logs or passes key material in arguments or the environment.
"""

import configparser
import json
import os

from oslo_concurrency import processutils
from oslo_log import log as logging

from os_brick.encryptors import base
from os_brick import exception
from os_brick import utils

LOG = logging.getLogger(__name__)

CONF_PATH = '/etc/keyscope/os-brick.conf'
KEYSCOPECTL = 'keyscopectl'
KEY_MODES = ('supplied', 'delegated')


def _options():
    """The [encryptor] section of os-brick.conf; absent file: defaults."""
    path = os.environ.get('KEYSCOPE_OS_BRICK_CONF', CONF_PATH)
    cp = configparser.ConfigParser()
    cp.read(path)
    opts = {'keys': 'supplied', 'socket': ''}
    if cp.has_section('encryptor'):
        opts.update(cp['encryptor'])
    if opts['keys'] not in KEY_MODES:
        raise exception.BrickException(
            message='%s: keys = %s: must be one of %s' % (path, opts['keys'],
                                                          ', '.join(KEY_MODES)))
    return opts


def _error_name(exc):
    """keyscope.<Name> from keyscopectl's last stderr line, or ''."""
    err = (exc.stderr or '').strip().splitlines()
    last = err[-1] if err else ''
    if last.endswith(')') and '(keyscope.' in last:
        return last[last.rindex('(keyscope.') + 1:-1]
    return ''


def _mangled_hex(key):
    """Nova's pre-Newton passphrase: each byte in hex without its leading zero
    (os-brick bug 1633518)."""
    return ''.join('%x' % b for b in key)


class KeyscopeEncryptor(base.VolumeEncryptor):
    """Opens volumes through keyscoped; blank volumes get os-brick's LUKS format."""

    # What a blank volume is formatted as on its first attach: 'luks1' and 'luks2' as
    # os-brick's LuksEncryptor/Luks2Encryptor do (hex of the key as passphrase, so a node
    # can go back to them); 'keyscope': LUKS2 whose volume key is the key, no keyslot.
    blank_format = 'luks1'

    def __init__(self, root_helper, connection_info, keymgr, execute=None, *args,
                 **kwargs):
        super().__init__(root_helper=root_helper, connection_info=connection_info,
                         keymgr=keymgr, execute=execute, *args, **kwargs)
        data = connection_info['data']
        if not data.get('device_path'):
            raise exception.VolumeEncryptionNotSupported(
                volume_id=data.get('volume_id') or connection_info.get('serial'),
                volume_type=connection_info['driver_volume_type'])
        self.cipher = kwargs.get('cipher')
        self.key_size = kwargs.get('key_size')
        self.opts = _options()
        self.symlink_path = data['device_path']
        base_name = os.path.basename(self.symlink_path)
        self.dev_name = self._mapping_name(base_name, data.get('multipath_id'))
        self.dev_path = os.path.realpath(self.symlink_path)

    # ---- names, as os-brick's encryptors choose them --------------------------------------

    def _mapping_name(self, base_name, wwn):
        """crypt-<basename>; the pre-Newton name (the basename itself) or the WWN when a
        crypt mapping of that name is open already, so volumes attached by older code
        detach and extend under their old names."""
        if self._crypt_mapping_exists(base_name):
            return base_name
        if wwn and wwn != base_name and self._crypt_mapping_exists(wwn):
            return wwn
        return 'crypt-%s' % base_name

    def _crypt_mapping_exists(self, name):
        if not os.path.exists('/dev/mapper/%s' % name):
            return False
        try:
            self._execute('cryptsetup', 'status', name, run_as_root=True,
                          root_helper=self._root_helper, check_exit_code=True)
        except processutils.ProcessExecutionError:
            return False
        return True

    # ---- keyscopectl --------------------------------------------------------------------

    def _ctl(self, *args, key=None):
        cmd = [KEYSCOPECTL]
        if self.opts['socket']:
            cmd += ['--socket', self.opts['socket']]
        cmd += ['--json'] + list(args)
        if key is not None:
            cmd.append('--key-stdin')
        out, _err = self._execute(*cmd, process_input=key, run_as_root=True,
                                  root_helper=self._root_helper, check_exit_code=True)
        return json.loads(out) if out.strip() else {}

    def _key(self, context):
        """The key's bytes from the key manager (supplied mode), else None."""
        if self.opts['keys'] == 'delegated':
            return None
        return bytes(self._get_key(context).get_encoded())

    def _header(self):
        """'keyscope' for a LUKS2 header with a keyscope token, 'luks' for another LUKS
        header, 'blank' for a device with no signature at all, else 'other'."""
        try:
            out, _err = self._execute('cryptsetup', 'luksDump', self.dev_path,
                                      run_as_root=True, root_helper=self._root_helper,
                                      check_exit_code=True)
        except processutils.ProcessExecutionError:
            try:
                self._execute('blkid', '-p', self.dev_path, run_as_root=True,
                              root_helper=self._root_helper, check_exit_code=[2])
            except processutils.ProcessExecutionError:
                return 'other'
            return 'blank'
        tokens = out.split('Tokens:', 1)[1] if 'Tokens:' in out else ''
        return 'keyscope' if ': keyscope' in tokens.split('Digests:', 1)[0] else 'luks'

    def _format(self, key):
        LOG.info('%s is blank: formatting it (%s) for first use', self.dev_path,
                 self.blank_format)
        if self.blank_format == 'keyscope':
            self._ctl('format', self.dev_path, '--key', self.encryption_key_id, key=key)
            return
        if key is None:
            raise exception.BrickException(
                message='formatting %s as %s needs the key from the key manager: use '
                        'keys = supplied, or KeyscopeNativeEncryptor' %
                        (self.dev_path, self.blank_format))
        cmd = ['cryptsetup', '--batch-mode', 'luksFormat', '--type', self.blank_format,
               '--key-file=-']
        if self.cipher:
            cmd += ['--cipher', self.cipher]
        if self.key_size:
            cmd += ['--key-size', str(self.key_size)]
        self._execute(*(cmd + [self.dev_path]), process_input=key.hex(), run_as_root=True,
                      root_helper=self._root_helper, check_exit_code=True)

    def _attach(self, header, key):
        args = ['attach', self.dev_path, '--name', self.dev_name,
                '--key', self.encryption_key_id]
        if header != 'keyscope':
            args += ['--passphrase', 'hex']
        return self._ctl(*args, key=key)

    def _fix_mangled(self, key):
        """A volume formatted by pre-Newton Nova has the mangled hex as passphrase: add the
        correct hex as a keyslot, as os-brick did, unlocking with the mangled one."""
        mangled = _mangled_hex(key)
        if mangled == key.hex():
            return False
        LOG.warning('%s: the key\'s hex opens no keyslot; adding it, unlocking with the '
                    'pre-Newton passphrase (os-brick bug 1633518)', self.dev_path)
        try:
            self._execute('cryptsetup', 'luksAddKey', '--batch-mode', self.dev_path,
                          process_input=mangled + '\n' + key.hex() + '\n',
                          run_as_root=True, root_helper=self._root_helper,
                          check_exit_code=True)
        except processutils.ProcessExecutionError:
            return False
        return True

    # ---- os-brick's interface -----------------------------------------------------------

    def attach_volume(self, context, **kwargs):
        """Open the volume as /dev/mapper/<name> through keyscoped and point device_path
        at it (what Nova hands libvirt)."""
        key = self._key(context)
        header = self._header()
        if header == 'blank':
            self._format(key)
            header = self._header()
        try:
            self._attach(header, key)
        except processutils.ProcessExecutionError as e:
            if not (_error_name(e) == 'keyscope.WrongKey' and header == 'luks' and
                    key is not None and self._fix_mangled(key)):
                raise
            self._attach(header, key)
        self._execute('ln', '--symbolic', '--force', '/dev/mapper/%s' % self.dev_name,
                      self.symlink_path, run_as_root=True, root_helper=self._root_helper,
                      check_exit_code=True)

    def detach_volume(self, **kwargs):
        """Remove the mapping; a mapping that is gone already is success. One that another
        encryptor opened (a node moved to keyscope with volumes attached) is closed with
        cryptsetup, as LuksEncryptor would."""
        try:
            self._ctl('detach', self.dev_name)
            return
        except processutils.ProcessExecutionError as e:
            if _error_name(e) != 'keyscope.NoSuchVolume':
                raise
        self._execute('cryptsetup', 'close', self.dev_name, run_as_root=True,
                      root_helper=self._root_helper, check_exit_code=[0, 4])

    def extend_volume(self, context, **kwargs):
        """Make the mapping follow its grown device; returns the new size in bytes."""
        try:
            self._ctl('resize', self.dev_name)
        except processutils.ProcessExecutionError as e:
            if _error_name(e) != 'keyscope.NoSuchVolume':
                raise
            key = self._get_key(context).get_encoded()
            self._execute('cryptsetup', 'resize', '--key-file=-', self.dev_name,
                          process_input=bytes(key).hex(), run_as_root=True,
                          root_helper=self._root_helper, check_exit_code=True)
        size = utils.get_device_size(self, '/dev/mapper/%s' % self.dev_name)
        LOG.debug('New size of mapping %s is %s', self.dev_name, size)
        return size


class KeyscopeLuks2Encryptor(KeyscopeEncryptor):
    """Blank volumes get os-brick's LUKS2 format (as Luks2Encryptor)."""
    blank_format = 'luks2'


class KeyscopeNativeEncryptor(KeyscopeEncryptor):
    """Blank volumes get keyscope's format: LUKS2, volume key = the key, no keyslot."""
    blank_format = 'keyscope'
