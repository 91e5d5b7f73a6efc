package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"hookd/store"
)

// parseWhen reads a time as a person types it in a filter, as every front of hookd
// takes one (store.ParseTime): an RFC 3339 time, a date or a date and time without
// a zone (UTC), or how long ago (2h). Its error is the message shown beside the field.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		// The store's "is empty" names no field: the form's error may be shown
		// away from it (a replay of a list with no rows left).
		return time.Time{}, errors.New("the time is missing: give " + store.TimeForms)
	}
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
	// Bad says why the page's position in the address (its before or after) could
	// not be read: the page shows it, and a link to First, instead of the list.
	Bad string
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

// pageOf cuts rows, read one past pageSize, to a page and makes its pager (as
// newPager): the next page goes on from position of the page's last row.
func pageOf[T any](rows []T, label, path string, q url.Values, cursor string, position func(T) string) ([]T, pager) {
	more := len(rows) > pageSize
	next := ""
	if more {
		rows = rows[:pageSize]
		next = position(rows[pageSize-1])
	}
	return rows, newPager(label, path, q, cursor, more, next)
}

// cursorInt reads a numeric paging cursor, 0 when the address has none. bad is
// set for one that is not a row's number (an address edited by hand): the page
// says so (badCursor), where it showed the first page with links to the first
// and the next as if the value meant something.
func cursorInt(q url.Values, key string) (n int64, bad string) {
	v := q.Get(key)
	if v == "" {
		return 0, ""
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return 0, badCursor(key, v, "not a number")
	case n <= 0:
		return 0, badCursor(key, v, "not a row's number, which is 1 or more")
	}
	return n, ""
}

// badCursor is the message of a list page whose position in the address, key=v,
// is what: the list's own links give the positions it takes.
func badCursor(key, v, what string) string {
	return "the page's position in the address, " + key + "=" + store.Quote(v) + ", is " + what +
		": page through the list with its own links"
}

// badPager is the pager of a list page whose position in the address (cursor)
// could not be read, bad saying why: in place of the list it links the list's
// first page, with the filter kept (q may have the position or not).
func badPager(label, path string, q url.Values, cursor, bad string) pager {
	return pager{Label: label, NewestFirst: cursor == "before", First: withQuery(path, q, cursor, ""), Bad: bad}
}

// pagedStatus is the status of a list page: 400 when its position could not be
// read (p.Bad), as a filter's bad value is; otherwise status.
func pagedStatus(status int, p pager) int {
	if p.Bad != "" && status == http.StatusOK {
		return http.StatusBadRequest
	}
	return status
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
