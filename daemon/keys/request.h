/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscope.KeyRequest: the daemon's side of a request-key upcall (docs/request-key.md). The
 * handler keyscope-request-key, run as root by /sbin/request-key, asks for the material of
 * keyscope:<key-id> on behalf of the uid that called request_key(2); the policy (which
 * requesters may cause a fetch) and the audit record live here, not in the handler.
 */
#pragma once

#include "call.h"

/* Longest callout info accepted; the audit log shows at most REQUEST_CALLOUT_LOG bytes of it. */
#define REQUEST_CALLOUT_MAX 4096
#define REQUEST_CALLOUT_LOG 128

int m_key_request(struct call *c);
