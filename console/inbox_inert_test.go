package console_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// What an inbox recorded is the sender's, and anyone can send: markup, javascript:
// URLs and bytes that are not UTF-8 in every field, shown as text on every page.
const (
	evilMethod = "<script>alert(20)</script>\xff"
	evilPath   = "/inbox/evil/<img src=x onerror=alert(21)>\xfe/javascript:alert(22)"
	evilQuery  = `next=javascript:alert(23)&x=<svg onload=alert(24)>`
	evilValue  = `"><script>alert(25)</script>`
	evilBody   = `<html><script>alert(26)</script><a href="javascript:alert(27)">x</a>`
)

// seedEvilInbox records hostile requests in the inbox "evil" (called by client A's
// registration) and returns them: one with a UTF-8 body, one without.
func seedEvilInbox(tb testing.TB, e *env) (text, binary store.InboxRequest) {
	tb.Helper()
	is := is.New(tb)
	_, _, err := e.st.PutOrcidWebhook(tb.Context(), e.a.ID, recordInbox, "http://127.0.0.1:8080/inbox/evil/x")
	is.NoErr(err)
	record := func(body string) store.InboxRequest {
		r, _, err := e.st.RecordInboxRequest(tb.Context(), store.InboxReceipt{Inbox: "evil", Method: evilMethod, Path: evilPath,
			Query: evilQuery, Header: http.Header{"X-Evil": {evilValue}, "Location": {"javascript:alert(28)"}, "X-Bytes": {"a\xffb\x1b"},
				"Webhook-Id": {evilValue}, "Webhook-Timestamp": {evilValue}, "Webhook-Signature": {"v1," + evilValue}},
			Body: []byte(body), RemoteAddr: "127.0.0.1:1"}, store.InboxLimits{})
		is.NoErr(err) // recorded as sent
		return r
	}
	return record(evilBody + "\n\x1b[31mred\u202e"), record("\xff\xfe" + evilBody)
}

func TestInboxShowsText(t *testing.T) {
	e := newEnv(t)
	text, binary := seedEvilInbox(t, e)
	u := e.as(t, "a")
	for path, shown := range map[string][]string{
		"/console/inbox":            {`&lt;script&gt;alert(20)&lt;/script&gt;\xff /inbox/evil/&lt;img src=x onerror=alert(21)&gt;\xfe/javascript:alert(22)?` + htmlText(evilQuery)},
		"/console/inbox?inbox=evil": {`&lt;script&gt;alert(20)&lt;/script&gt;\xff`},
		"/console/inbox/requests/" + strconv.FormatInt(text.ID, 10): {
			`<code>&lt;script&gt;alert(20)&lt;/script&gt;\xff</code>`,                                           // the method, its byte as \xff
			`<code class="url">/inbox/evil/&lt;img src=x onerror=alert(21)&gt;\xfe/javascript:alert(22)</code>`, // the path
			`<code class="url">` + htmlText(evilQuery) + `</code>`,                                              // the query
			`<td><code>X-Evil</code></td><td><code class="url">` + htmlText(evilValue) + `</code></td>`,
			`<td><code class="url">javascript:alert(28)</code></td>`,                                          // a URL in a header is no link
			`<td><code>X-Bytes</code></td><td><code class="url">a\xffb\x1b</code></td>`,                       // a byte that is not UTF-8 kept, shown as \xff
			htmlText(evilBody) + "\n" + `\x1b[31mred\u202e</pre>`,                                             // the body, its controls escaped
			`<code>malformed_header</code>: webhook-timestamp ` + htmlText(`"\"><script>alert(25)</script>"`), // the verdict quotes the header
		},
		"/console/inbox/requests/" + strconv.FormatInt(binary.ID, 10): {
			"not UTF-8: in hex",
			"00000000  ff fe 3c 68 74 6d 6c 3e  3c 73 63 72 69 70 74 3e  |..&lt;html&gt;&lt;script&gt;|", // the body in hex
		},
	} {
		t.Run(path, func(t *testing.T) {
			is := is.New(t)
			p := u.get(t, path)
			is.Equal(p.status, http.StatusOK)
			for _, r := range append(raw, "<a href=\"javascript:", "\xff", "\xfe", "\x1b", "\u202e") {
				if strings.Contains(p.body, r) {
					t.Errorf("%s shows %q as it was sent", path, r)
				}
			}
			is.True(!jsAttr.MatchString(p.body)) // no javascript: URL to follow
			for _, s := range shown {
				if !strings.Contains(p.body, s) {
					t.Errorf("%s does not show %q", path, s)
				}
			}
		})
	}
}
