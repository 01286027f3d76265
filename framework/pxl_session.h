/*
 * pxl_session.h - sessions and system/resume (resume): a disconnected
 * client's session kept in this process for resume.ttl seconds, taken
 * over once with its token. Installed by pxl-serve like the history.
 */
#ifndef PXL_SESSION_H
#define PXL_SESSION_H

#include "pxl_worker.h"

/* With resume: keep sessions in srv (PXL_ENOMEM, else PXL_OK). */
int pxl_session_install(struct pxl_worker *srv);

#endif
