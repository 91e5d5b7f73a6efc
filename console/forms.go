package console

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"time"

	"hookd/store"
)

// parseWhen reads a time as a person types it in a filter, as every front of hookd
// takes one (store.ParseTime): an RFC 3339 time, a date or a date and time without
// a zone (UTC), or how long ago (2h). Its error is the message shown beside the field.
func parseWhen(s string, now time.Time) (time.Time, error) {
	t, err := store.ParseTime("", s, now, time.UTC)
	var e *store.Error
	if errors.As(err, &e) {
		return t, errors.New(e.Message)
	}
	return t, err
}

// pager links a table's first page and its next one, keeping the filter.
type pager struct {
	Label string
	First string // empty on the first page
	Next  string // empty on the last page
	// NewestFirst: the table is newest first, so its first page is the newest and
	// the next one older; other tables (in the order made, or by iD) say "first"
	// and "next".
	NewestFirst bool
}

// pageSize is how many rows a console table shows at once.
const pageSize = 50

// newPager makes the pager of a list fetched with one row more than a page (so
// there is a next page when it came back full); cursor is the paging parameter and
// next its value for the following page. A list newest first pages "before" a
// row; one oldest first, or by iD, "after" it.
func newPager(label, path string, q url.Values, cursor string, more bool, next string) pager {
	p := pager{Label: label, NewestFirst: cursor == "before"}
	if q.Get(cursor) != "" {
		p.First = withQuery(path, q, cursor, "")
	}
	if more {
		p.Next = withQuery(path, q, cursor, next)
	}
	return p
}

// withQuery is path with the query q where key is set to value (left out when empty),
// and without the one-off done flag.
func withQuery(path string, q url.Values, key, value string) string {
	c := url.Values{}
	for k, v := range q {
		if k != key && k != "done" && len(v) > 0 && v[0] != "" {
			c.Set(k, v[0])
		}
	}
	if value != "" {
		c.Set(key, value)
	}
	if len(c) == 0 {
		return path
	}
	return path + "?" + c.Encode()
}

// cursorInt reads a numeric paging cursor; a bad one starts at the first page.
func cursorInt(q url.Values, key string) int64 {
	n, err := strconv.ParseInt(q.Get(key), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// errNoConfirm is the message beside a destructive action's confirmation box.
var errNoConfirm = errors.New("tick the box to confirm")

// orgOptions are the organisations as a filter's choices, selected the one whose id
// is selected.
func (h *Handler) orgOptions(ctx context.Context, selected string) ([]option, error) {
	orgs, err := h.st.Organisations(ctx)
	if err != nil {
		return nil, err
	}
	var out []option
	for _, o := range orgs {
		id := strconv.FormatInt(o.ID, 10)
		out = append(out, option{Value: id, Label: o.Name, Selected: id == selected})
	}
	return out, nil
}
