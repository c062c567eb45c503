/* `tbgw doctor` check of a KNX connector's gateway (doctor_knx.c). */
#ifndef TBGW_DOCTOR_KNX_H
#define TBGW_DOCTOR_KNX_H

#include <jansson.h>

#include "doctor/doctor.h"

/* client = the connector file's "client" object (may be NULL). */
void dr_check_knx(dr_report *r, const char *check, const char *name, const json_t *client);

#endif
