/*
 * aff_status.h - the one mapping between the status enums of
 * proto/affiliate/v1/status.proto and the words the API, the JSON and the
 * database use for them ("pending", "approved", ...).
 *
 * The resource messages keep string status fields (wire compatibility
 * with clients that send and read strings), so every check of such a
 * string goes through here instead of comparing it with literals: a new
 * status is one line in status.proto. A value's word is its name after
 * the enum's prefix (the UNSPECIFIED value's name without "UNSPECIFIED"),
 * in lowercase: ORDER_STATUS_DECLINED is "declined".
 */
#ifndef AFF_STATUS_H
#define AFF_STATUS_H

#include <stddef.h>

#include "affiliate/v1/status.pb-c.h"

#define AFF_ADVERTISER_STATUS (&affiliate__v1__advertiser_status__descriptor)
#define AFF_APPLICATION_STATUS (&affiliate__v1__application_status__descriptor)
#define AFF_ORDER_STATUS (&affiliate__v1__order_status__descriptor)
#define AFF_REVIEW_DECISION (&affiliate__v1__review_decision__descriptor)

/*
 * The word for value v of enum d ("pending"), a static string; NULL for 0
 * (UNSPECIFIED) and for a value d does not have, so a loop over v = 1,
 * 2, ... ends at the first NULL. d is one of the AFF_*_STATUS/DECISION
 * enums above (any other is a bug in this program).
 */
const char *aff_status_word(const ProtobufCEnumDescriptor *d, int v);

/* The value of d whose word is exactly s (case matters: "Pending" is
 * not a status); 0 (UNSPECIFIED) for NULL, "" and any other word. */
int aff_status_parse(const ProtobufCEnumDescriptor *d, const char *s);

/* The words of d as a list for a message, "pending, approved or
 * rejected", into buf (cut short if size is too small); returns buf. */
const char *aff_status_list(const ProtobufCEnumDescriptor *d, char *buf,
    size_t size);

#endif /* AFF_STATUS_H */
