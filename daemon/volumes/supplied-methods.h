/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handlers of keyscope.VolumeAttach and keyscope.VolumeFormat with a supplied key
 * (contract in sources/supplied.h). A payload needs "key-id" and must be 32 or 64 bytes. */
#pragma once

struct call;

int supplied_volume_attach(struct call *c);
int supplied_volume_format(struct call *c);
