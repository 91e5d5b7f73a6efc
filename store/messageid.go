package store

import "strconv"

// MessageID is the Standard Webhooks webhook-id of a delivery, stable across its
// retries: what dispatch sends and what the API shows beside the delivery.
func MessageID(deliveryID int64) string { return "msg_" + strconv.FormatInt(deliveryID, 10) }
