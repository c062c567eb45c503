/* BACnet object types and property identifiers (ASHRAE 135 clause 21) by camelCase name; the
 * kebab-case spelling and plain numbers are accepted too. Numbers without a name (vendor
 * proprietary ranges) pass through as numbers. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "proto/bacnet/bn.h"

static const char *const object_types[] = {
    "analogInput",
    "analogOutput",
    "analogValue",
    "binaryInput",
    "binaryOutput",
    "binaryValue",
    "calendar",
    "command",
    "device",
    "eventEnrollment",
    "file",
    "group",
    "loop",
    "multiStateInput",
    "multiStateOutput",
    "notificationClass",
    "program",
    "schedule",
    "averaging",
    "multiStateValue",
    "trendLog",
    "lifeSafetyPoint",
    "lifeSafetyZone",
    "accumulator",
    "pulseConverter",
    "eventLog",
    "globalGroup",
    "trendLogMultiple",
    "loadControl",
    "structuredView",
    "accessDoor",
    "timer",
    "accessCredential",
    "accessPoint",
    "accessRights",
    "accessUser",
    "accessZone",
    "credentialDataInput",
    "networkSecurity",
    "bitstringValue",
    "characterstringValue",
    "datePatternValue",
    "dateValue",
    "datetimePatternValue",
    "datetimeValue",
    "integerValue",
    "largeAnalogValue",
    "octetstringValue",
    "positiveIntegerValue",
    "timePatternValue",
    "timeValue",
    "notificationForwarder",
    "alertEnrollment",
    "channel",
    "lightingOutput",
    "binaryLightingOutput",
    "networkPort",
    "elevatorGroup",
    "escalator",
    "lift",
};

/* Index = property identifier; NULL = no name. */
static const char *const properties[] = {
    "ackedTransitions",
    "ackRequired",
    "action",
    "actionText",
    "activeText",
    "activeVtSessions",
    "alarmValue",
    "alarmValues",
    "all",
    "allWritesSuccessful",
    "apduSegmentTimeout",
    "apduTimeout",
    "applicationSoftwareVersion",
    "archive",
    "bias",
    "changeOfStateCount",
    "changeOfStateTime",
    "notificationClass",
    NULL,
    "controlledVariableReference",
    "controlledVariableUnits",
    "controlledVariableValue",
    "covIncrement",
    "dateList",
    "daylightSavingsStatus",
    "deadband",
    "derivativeConstant",
    "derivativeConstantUnits",
    "description",
    "descriptionOfHalt",
    "deviceAddressBinding",
    "deviceType",
    "effectivePeriod",
    "elapsedActiveTime",
    "errorLimit",
    "eventEnable",
    "eventState",
    "eventType",
    "exceptionSchedule",
    "faultValues",
    "feedbackValue",
    "fileAccessMethod",
    "fileSize",
    "fileType",
    "firmwareRevision",
    "highLimit",
    "inactiveText",
    "inProcess",
    "instanceOf",
    "integralConstant",
    "integralConstantUnits",
    NULL,
    "limitEnable",
    "listOfGroupMembers",
    "listOfObjectPropertyReferences",
    NULL,
    "localDate",
    "localTime",
    "location",
    "lowLimit",
    "manipulatedVariableReference",
    "maximumOutput",
    "maxApduLengthAccepted",
    "maxInfoFrames",
    "maxMaster",
    "maxPresValue",
    "minimumOffTime",
    "minimumOnTime",
    "minimumOutput",
    "minPresValue",
    "modelName",
    "modificationDate",
    "notifyType",
    "numberOfApduRetries",
    "numberOfStates",
    "objectIdentifier",
    "objectList",
    "objectName",
    "objectPropertyReference",
    "objectType",
    "optional",
    "outOfService",
    "outputUnits",
    "eventParameters",
    "polarity",
    "presentValue",
    "priority",
    "priorityArray",
    "priorityForWriting",
    "processIdentifier",
    "programChange",
    "programLocation",
    "programState",
    "proportionalConstant",
    "proportionalConstantUnits",
    NULL,
    "protocolObjectTypesSupported",
    "protocolServicesSupported",
    "protocolVersion",
    "readOnly",
    "reasonForHalt",
    NULL,
    "recipientList",
    "reliability",
    "relinquishDefault",
    "required",
    "resolution",
    "segmentationSupported",
    "setpoint",
    "setpointReference",
    "stateText",
    "statusFlags",
    "systemStatus",
    "timeDelay",
    "timeOfActiveTimeReset",
    "timeOfStateCountReset",
    "timeSynchronizationRecipients",
    "units",
    "updateInterval",
    "utcOffset",
    "vendorIdentifier",
    "vendorName",
    "vtClassesSupported",
    "weeklySchedule",
    "attemptedSamples",
    "averageValue",
    "bufferSize",
    "clientCovIncrement",
    "covResubscriptionInterval",
    NULL,
    "eventTimeStamps",
    "logBuffer",
    "logDeviceObjectProperty",
    "enable",
    "logInterval",
    "maximumValue",
    "minimumValue",
    "notificationThreshold",
    NULL,
    "protocolRevision",
    "recordsSinceNotification",
    "recordCount",
    "startTime",
    "stopTime",
    "stopWhenFull",
    "totalRecordCount",
    "validSamples",
    "windowInterval",
    "windowSamples",
    "maximumValueTimestamp",
    "minimumValueTimestamp",
    "varianceValue",
    "activeCovSubscriptions",
    "backupFailureTimeout",
    "configurationFiles",
    "databaseRevision",
    "directReading",
    "lastRestoreTime",
    "maintenanceRequired",
    "memberOf",
    "mode",
    "operationExpected",
    "setting",
    "silenced",
    "trackingValue",
    "zoneMembers",
    "lifeSafetyAlarmValues",
    "maxSegmentsAccepted",
    "profileName",
};

#define N_TYPES (sizeof object_types / sizeof object_types[0])
#define N_PROPS (sizeof properties / sizeof properties[0])

/* Named properties past the contiguous table. */
static const struct {
    unsigned id;
    const char *name;
} extra_props[] = {
    {169, "autoSlaveDiscovery"},
    {174, "scheduleDefault"},
    {197, "loggingType"},
    {371, "propertyList"},
};

const char *bn_object_type_name(unsigned t) {
    return t < N_TYPES ? object_types[t] : NULL;
}

const char *bn_property_name(unsigned p) {
    if (p < N_PROPS) return properties[p];
    for (size_t i = 0; i < sizeof extra_props / sizeof extra_props[0]; i++)
        if (extra_props[i].id == p) return extra_props[i].name;
    return NULL;
}

void bn_kebab(const char *camel, char *out, size_t cap) {
    size_t o = 0;
    if (!cap) return;
    for (const char *p = camel; *p && o + 2 < cap; p++) {
        if (isupper((unsigned char)*p)) {
            out[o++] = '-';
            out[o++] = (char)tolower((unsigned char)*p);
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

/* Compares a camelCase name with s written camelCase, kebab-case or snake/upper case. */
static int name_eq(const char *camel, const char *s) {
    const char *a = camel, *b = s;
    while (*a && *b) {
        if (*b == '-' || *b == '_') {
            b++;
            if (!isupper((unsigned char)*a)) return 0;
        }
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        a++, b++;
    }
    return *a == 0 && *b == 0;
}

static int parse_num(const char *s) {
    if (!*s) return -1;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 0 || v > 0x3FFFFF) return -1;
    return (int)v;
}

int bn_object_type_parse(const char *name) {
    if (!name) return -1;
    if (isdigit((unsigned char)*name)) {
        int v = parse_num(name);
        return v <= 1023 ? v : -1;
    }
    for (unsigned i = 0; i < N_TYPES; i++)
        if (name_eq(object_types[i], name)) return (int)i;
    return -1;
}

int bn_property_parse(const char *name) {
    if (!name) return -1;
    if (isdigit((unsigned char)*name)) return parse_num(name);
    for (unsigned i = 0; i < N_PROPS; i++)
        if (properties[i] && name_eq(properties[i], name)) return (int)i;
    for (size_t i = 0; i < sizeof extra_props / sizeof extra_props[0]; i++)
        if (name_eq(extra_props[i].name, name)) return (int)extra_props[i].id;
    return -1;
}

/* ---- vendor-proprietary properties ---- */

static const struct {
    uint32_t vendor, id;
    const char *name;
} vendor_props[] = {
    {7, 3121, "descriptionList"}, /* Siemens Building Technologies (Desigo CC) */
};

int bn_vendor_property_parse(uint32_t vendor, const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < sizeof vendor_props / sizeof vendor_props[0]; i++)
        if ((vendor == 0 || vendor_props[i].vendor == vendor) && name_eq(vendor_props[i].name, name))
            return (int)vendor_props[i].id;
    return -1;
}

const char *bn_vendor_property_name(uint32_t vendor, uint32_t prop) {
    for (size_t i = 0; i < sizeof vendor_props / sizeof vendor_props[0]; i++)
        if ((vendor == 0 || vendor_props[i].vendor == vendor) && vendor_props[i].id == prop)
            return vendor_props[i].name;
    return NULL;
}

uint32_t bn_vendor_property_owner(const char *name) {
    for (size_t i = 0; name && i < sizeof vendor_props / sizeof vendor_props[0]; i++)
        if (name_eq(vendor_props[i].name, name)) return vendor_props[i].vendor;
    return 0;
}

/* ---- error, reject and abort texts ---- */

static const char *const error_classes[] = {"device",   "object",   "property", "resources",
                                            "security", "services", "vt",       "communication"};

static const struct {
    unsigned code;
    const char *name;
} error_codes[] = {
    {0, "other"},
    {2, "configuration-in-progress"},
    {3, "device-busy"},
    {5, "file-access-denied"},
    {7, "inconsistent-parameters"},
    {9, "invalid-data-type"},
    {13, "invalid-parameter-data-type"},
    {16, "missing-required-parameter"},
    {17, "no-objects-of-specified-type"},
    {20, "no-space-to-write-property"},
    {25, "operational-problem"},
    {26, "password-failure"},
    {27, "read-access-denied"},
    {29, "service-request-denied"},
    {30, "timeout"},
    {31, "unknown-object"},
    {32, "unknown-property"},
    {36, "unsupported-object-type"},
    {37, "value-out-of-range"},
    {40, "write-access-denied"},
    {42, "invalid-array-index"},
    {43, "cov-subscription-failed"},
    {44, "not-cov-property"},
    {45, "optional-functionality-not-supported"},
    {47, "datatype-not-supported"},
    {50, "property-is-not-an-array"},
};

static const char *const reject_reasons[] = {
    "other",
    "buffer-overflow",
    "inconsistent-parameters",
    "invalid-parameter-data-type",
    "invalid-tag",
    "missing-required-parameter",
    "parameter-out-of-range",
    "too-many-arguments",
    "undefined-enumeration",
    "unrecognized-service",
};

static const char *const abort_reasons[] = {
    "other",
    "buffer-overflow",
    "invalid-apdu-in-this-state",
    "preempted-by-higher-priority-task",
    "segmentation-not-supported",
    "security-error",
    "insufficient-security",
    "window-size-out-of-range",
    "application-exceeded-reply-time",
    "out-of-resources",
    "tsm-timeout",
    "apdu-too-long",
};

const char *bn_error_class_name(uint32_t c) {
    return c < sizeof error_classes / sizeof error_classes[0] ? error_classes[c] : "proprietary";
}

const char *bn_error_code_name(uint32_t c) {
    for (size_t i = 0; i < sizeof error_codes / sizeof error_codes[0]; i++)
        if (error_codes[i].code == c) return error_codes[i].name;
    return c >= 256 ? "proprietary" : "other";
}

const char *bn_reject_name(uint32_t r) {
    return r < sizeof reject_reasons / sizeof reject_reasons[0] ? reject_reasons[r] : "proprietary";
}

const char *bn_abort_name(uint32_t r) {
    return r < sizeof abort_reasons / sizeof abort_reasons[0] ? abort_reasons[r] : "proprietary";
}

static const char *const network_reject_reasons[] = {
    "other",          "not-directly-connected", "router-busy", "unknown-network-message", "message-too-long",
    "security-error", "addressing-error",
};

const char *bn_network_reject_name(uint32_t r) {
    return r < sizeof network_reject_reasons / sizeof network_reject_reasons[0] ? network_reject_reasons[r]
                                                                                : "unknown";
}
