/* StatusCode names (Part 6 Annex A, the codes a gateway meets). */
#include <stdio.h>
#include <stdint.h>

#include "proto/opcua/ua_client.h"

static const struct {
    uint32_t code;
    const char *name;
} status_names[] = {
    {0x00000000u, "Good"},
    {0x40000000u, "Uncertain"},
    {0x40920000u, "UncertainInitialValue"},
    {0x80000000u, "Bad"},
    {0x80010000u, "BadUnexpectedError"},
    {0x80020000u, "BadInternalError"},
    {0x80030000u, "BadOutOfMemory"},
    {0x80040000u, "BadResourceUnavailable"},
    {0x80050000u, "BadCommunicationError"},
    {0x80060000u, "BadEncodingError"},
    {0x80070000u, "BadDecodingError"},
    {0x80080000u, "BadEncodingLimitsExceeded"},
    {0x800A0000u, "BadTimeout"},
    {0x800B0000u, "BadServiceUnsupported"},
    {0x800C0000u, "BadShutdown"},
    {0x800D0000u, "BadServerNotConnected"},
    {0x800E0000u, "BadServerHalted"},
    {0x800F0000u, "BadNothingToDo"},
    {0x80100000u, "BadTooManyOperations"},
    {0x80120000u, "BadCertificateInvalid"},
    {0x80130000u, "BadSecurityChecksFailed"},
    {0x801A0000u, "BadCertificateUntrusted"},
    {0x801D0000u, "BadCertificateRevoked"},
    {0x801F0000u, "BadUserAccessDenied"},
    {0x80200000u, "BadIdentityTokenInvalid"},
    {0x80210000u, "BadIdentityTokenRejected"},
    {0x80220000u, "BadSecureChannelIdInvalid"},
    {0x80240000u, "BadNonceInvalid"},
    {0x80250000u, "BadSessionIdInvalid"},
    {0x80260000u, "BadSessionClosed"},
    {0x80270000u, "BadSessionNotActivated"},
    {0x80280000u, "BadSubscriptionIdInvalid"},
    {0x80310000u, "BadNoCommunication"},
    {0x80320000u, "BadWaitingForInitialData"},
    {0x80330000u, "BadNodeIdInvalid"},
    {0x80340000u, "BadNodeIdUnknown"},
    {0x80350000u, "BadAttributeIdInvalid"},
    {0x80360000u, "BadIndexRangeInvalid"},
    {0x80370000u, "BadIndexRangeNoData"},
    {0x80380000u, "BadDataEncodingInvalid"},
    {0x803A0000u, "BadNotReadable"},
    {0x803B0000u, "BadNotWritable"},
    {0x803C0000u, "BadOutOfRange"},
    {0x803D0000u, "BadNotSupported"},
    {0x803E0000u, "BadNotFound"},
    {0x803F0000u, "BadObjectDeleted"},
    {0x80400000u, "BadNotImplemented"},
    {0x80410000u, "BadMonitoringModeInvalid"},
    {0x804A0000u, "BadContinuationPointInvalid"},
    {0x804B0000u, "BadNoContinuationPoints"},
    {0x80550000u, "BadSecurityPolicyRejected"},
    {0x80560000u, "BadTooManySessions"},
    {0x80570000u, "BadUserSignatureInvalid"},
    {0x80580000u, "BadApplicationSignatureInvalid"},
    {0x80600000u, "BadBrowseNameInvalid"},
    {0x806F0000u, "BadNoMatch"},
    {0x80740000u, "BadTypeMismatch"},
    {0x80750000u, "BadMethodInvalid"},
    {0x80760000u, "BadArgumentsMissing"},
    {0x80780000u, "BadTooManyPublishRequests"},
    {0x80790000u, "BadNoSubscription"},
    {0x80800000u, "BadTcpMessageTooLarge"},
    {0x80AB0000u, "BadInvalidArgument"},
    {0x80AE0000u, "BadConnectionClosed"},
    {0x80AF0000u, "BadInvalidState"},
    {0x80E50000u, "BadTooManyArguments"},
};

const char *tbgw_ua_status_name(uint32_t status, char buf[16]) {
    uint32_t code = status & 0xFFFF0000u;
    for (size_t i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
        if (status_names[i].code == code) return status_names[i].name;
    snprintf(buf, 16, "0x%08X", (unsigned)status);
    return buf;
}
