/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The volume methods: format, attach, detach, resize, rebind, list. The records of what is
 * attached, and their recovery after a crash, are in attachments.h.
 */
#pragma once

#include "attachments.h"
#include "call.h"

int m_volume_format(struct call *c);
int m_volume_attach(struct call *c);
int m_volume_detach(struct call *c);
int m_volume_resize(struct call *c);
int m_volume_rebind(struct call *c);
int m_volume_list(struct call *c);
