# SPDX-License-Identifier: LGPL-2.1-or-later
"""keyscope's encryptor for os-brick: Nova opens encrypted volumes through keyscoped.

Name it as the volume type's encryption provider, with control_location front-end:
    keyscope_os_brick.encryptor.KeyscopeEncryptor        (blank volumes: os-brick LUKS1)
    keyscope_os_brick.encryptor.KeyscopeLuks2Encryptor   (blank volumes: os-brick LUKS2)
    keyscope_os_brick.encryptor.KeyscopeNativeEncryptor  (blank volumes: keyscope's LUKS2)
See docs/openstack.md in keyscope.
"""
