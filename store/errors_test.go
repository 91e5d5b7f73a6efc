package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"hookd/store"
)

// fieldErr returns the *store.Error in err, failing the test when there is none.
func fieldErr(tb testing.TB, err error) *store.Error {
	tb.Helper()
	var e *store.Error
	if !errors.As(err, &e) {
		tb.Fatalf("%v (%T) is not a *store.Error", err, err)
	}
	return e
}

func TestErrorText(t *testing.T) {
	is := is.New(t)
	is.Equal((&store.Error{Code: store.Invalid, Field: "url", Message: "required when enabled is true"}).Error(),
		"url: required when enabled is true") // field, then message
	is.Equal((&store.Error{Code: store.NotFound, Message: "organisation 5 not found"}).Error(),
		"organisation 5 not found") // no field: the message alone
	is.Equal(store.ErrNotFound.Error(), "not found") // a sentinel says its code
}

func TestErrorIs(t *testing.T) {
	bad := &store.Error{Code: store.Invalid, Field: "name", Message: "is required"}
	scope := &store.Error{Code: store.Invalid, Field: "scope", Message: "/admin is not granted to this client"}
	wrapped := fmt.Errorf("create organisation: %w", bad)
	for _, tt := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"code sentinel", bad, store.ErrInvalid, true},
		{"through a wrap", wrapped, store.ErrInvalid, true},
		{"another code", bad, store.ErrNotFound, false},
		{"field sentinel, its field", scope, store.ErrScope, true},
		{"field sentinel, another field", bad, store.ErrScope, false},
		{"a token error is itself", fmt.Errorf("token info: %w", store.ErrTokenExpired), store.ErrTokenExpired, true},
		{"but not its sibling", store.ErrTokenExpired, store.ErrTokenInvalid, false},
		{"nor a code sentinel's match of another message", bad, &store.Error{Code: store.Invalid, Message: "other"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(errors.Is(tt.err, tt.target), tt.want) // errors.Is matches by code (and field)
		})
	}
}

func TestCheckURL(t *testing.T) {
	long := "https://example.org/" + strings.Repeat("a", 2048)
	tests := []struct {
		url     string
		private bool
		wantErr string
	}{
		{"http://nowhere2.com/0000-0002-7253-3645/updated", false, ""},
		{"https://example.org/a?b=c&d=%25", false, ""},
		{"http://127.0.0.1:9000/x", true, ""},
		{"http://127.0.0.1:9000/x", false, "host 127.0.0.1 is in 127.0.0.0/8 (Loopback); set delivery.allow_private_targets"},
		{"http://[::1]/x", false, "Loopback"},
		{"http://10.0.0.5/x", false, "private"},
		{"http://localhost/x", false, `host "localhost" is a loopback name`},
		{"ftp://example.org/x", false, `URL "ftp://example.org/x" must be an absolute http or https URL`},
		{"/relative/path", false, "absolute http or https"},
		// An address written without its http:// is told to give its scheme, where
		// 127.0.0.1:9000/x was "first path segment in URL cannot contain colon".
		{"127.0.0.1:9000/x", true, `URL "127.0.0.1:9000/x" must be an absolute http or https URL: give its scheme, as http://127.0.0.1:9000/x`},
		{"hooks.example/x", false, `URL "hooks.example/x" must be an absolute http or https URL: give its scheme, as http://hooks.example/x`},
		{"localhost:9000", true, `URL "localhost:9000" must be an absolute http or https URL: give its scheme, as http://localhost:9000`},
		{"javascript:alert(1)", false, `URL "javascript:alert(1)" must be an absolute http or https URL`},
		{"httpbin.example/post", false, `URL "httpbin.example/post" must be an absolute http or https URL: give its scheme, as http://httpbin.example/post`},
		{"http//example.org/x", false, `URL "http//example.org/x" must be an absolute http or https URL`},
		// What the error quotes has what may be a user name and password redacted
		// (an '@' before any query): the hint does not write it as the URL to give,
		// which would carry a user name.
		{"127.0.0.1:9000/hook/ann@uni.example", true, `URL "[redacted]@uni.example" must be an absolute http or https URL: give its scheme, http:// or https://, before its host`},
		{"ann:123/45@hooks.example/x", false, `URL "[redacted]@hooks.example/x" must be an absolute http or https URL: give its scheme, http:// or https://, before its host`},
		// One refused with its scheme too is told both at once, not a URL to give
		// that is refused in turn (for its space, after the http:// is added).
		{"hooks.example/a b", false, `URL "hooks.example/a b" must be an absolute http or https URL: give its scheme, http:// or https://, before its host; with it, URL "http://hooks.example/a b" contains white space`},
		{"hooks.example/x#top", false, `URL "hooks.example/x#top" must be an absolute http or https URL: give its scheme, http:// or https://, before its host; with it, URL "http://hooks.example/x#top" must not have a #fragment`},
		{"127.0.0.1:9000/x", false, `URL "127.0.0.1:9000/x" must be an absolute http or https URL: give its scheme, http:// or https://, before its host; with it, host 127.0.0.1 is in 127.0.0.0/8 (Loopback); set delivery.allow_private_targets to allow it`},
		{"ann:123/45@hooks.example/a b", false, `URL "[redacted]@hooks.example/a b" must be an absolute http or https URL: give its scheme, http:// or https://, before its host; with it, URL "http://[redacted]@hooks.example/a b" contains white space`},
		{"http:///nohost", false, "no host"},
		{"http://user:pw@example.org/", false, "user name"},
		{"http://example.org/#top", false, "#fragment"},
		{"http://example.org/a b", false, "white space"},
		{"http://example.org/%zz", false, `URL "http://example.org/%zz" does not parse: invalid URL escape "%zz"`},
		{long, false, "URL is 2068 bytes long; the limit is 2048 bytes"},
		{"", false, "URL is empty"},
	}
	// A scheme of its own, or a path, is not taken for an address without http://;
	// nor is a scheme written without its colon (http//host/x, whose "host" is
	// "http"), which the hint would have written as http://http//host/x.
	for _, raw := range []string{"javascript:alert(1)", "mailto:ann@uni.example", "/relative/path", "ftp://example.org/x",
		"http//example.org/x", "https//example.org/x", "HTTPS//example.org", "http;//example.org/x", "ftp//example.org/x", "http/x"} {
		e := fieldErr(t, func() error { _, err := store.CheckURL("targetURL", raw, true); return err }())
		if strings.Contains(e.Message, "give its scheme") {
			t.Errorf("%s: %q", raw, e.Message)
		}
	}
	// The limit counts bytes, as SPEC does: 2048 characters of 4076 bytes are refused.
	if _, err := store.CheckURL("targetURL", "https://example.org/"+strings.Repeat("é", 2028), false); err == nil {
		t.Errorf("2048 characters of 4076 bytes: taken")
	}
	for _, tt := range tests {
		t.Run(tt.url[:min(len(tt.url), 40)], func(t *testing.T) {
			is := is.New(t)
			u, err := store.CheckURL("targetURL", tt.url, tt.private)
			if tt.wantErr == "" {
				is.NoErr(err)
				is.Equal(u.String(), tt.url) // the parsed URL
				return
			}
			e := fieldErr(t, err)
			is.Equal(e.Code, store.Invalid)                     // invalid input
			is.Equal(e.Field, "targetURL")                      // the field the caller named
			is.True(strings.Contains(e.Message, tt.wantErr))    // says what is wrong
			is.True(!strings.HasPrefix(e.Message, "targetURL")) // without repeating the field
			is.True(!strings.Contains(e.Message, "123/45"))     // nor a password
			if _, give, ok := strings.Cut(e.Message, "give its scheme, as "); ok {
				_, err := store.CheckURL("targetURL", give, tt.private)
				is.NoErr(err) // the URL the hint gives is taken
			}
		})
	}
}

func TestCheckOrcidAndEmail(t *testing.T) {
	is := is.New(t)
	is.NoErr(store.CheckOrcid("orcid", "0000-0002-7253-3645")) // a good iD
	e := fieldErr(t, store.CheckOrcid("[3].orcid", "0000-0002-7253-3646"))
	is.Equal(e.Field, "[3].orcid") // the caller's field
	is.Equal(e.Error(), `[3].orcid: ORCID iD "0000-0002-7253-3646" has a wrong check digit: the last character should be 5`)

	is.NoErr(store.CheckEmail("email", "ann@uni.example"))         // a plain address
	is.NoErr(store.CheckEmail("email", "ann@universität.example")) // a domain in another script, sent in its IDNA form
	is.NoErr(store.CheckEmail("email", "jöe@uni.example"))         // a local part in another script: a member's, which e-mail only names
	is.NoErr(store.CheckMailbox("notification-email", "ann@universität.example"))
	e = fieldErr(t, store.CheckMailbox("notification-email", "jöe@uni.example")) // one to send e-mail to: not in UTF-8
	is.Equal(e.Field, "notification-email")
	is.True(strings.Contains(e.Message, "has a non-ASCII local part, which needs a relay with SMTPUTF8"))
	for _, bad := range []string{"nope", "Ann <ann@uni.example>", "a@b@c", strings.Repeat("a", 250) + "@b.example", "ann\u2028Record:x@uni.example", "ann\u0085x@uni.example",
		"ann@ü-.example", "ann@bü_cher.example"} { // a domain an e-mail could not be sent to: it has no IDNA form
		e := fieldErr(t, store.CheckEmail("tech-contact-email", bad))
		is.Equal(e.Code, store.Invalid)               // refused
		is.Equal(e.Field, "tech-contact-email")       // naming the field
		is.True(!strings.Contains(e.Message, "tech")) // the message does not repeat it
	}
}

func TestParseEventType(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"", store.EventUpdated, ""},
		{"updated", store.EventUpdated, ""},
		{"CREATED", store.EventCreated, ""},
		{"DELETED", "", `type: must be UPDATED or CREATED, got "DELETED"`},
	} {
		t.Run(tt.in, func(t *testing.T) {
			is := is.New(t)
			got, err := store.ParseEventType("type", tt.in)
			if tt.err != "" {
				is.Equal(fieldErr(t, err).Error(), tt.err) // names the field and the value
				return
			}
			is.NoErr(err)
			is.Equal(got, tt.want) // the stored type
		})
	}
	t.Run("platform names", func(t *testing.T) {
		is := is.New(t)
		got, err := store.ParseEventTypeName("types[0]", "orcid.record.created")
		is.NoErr(err)
		is.Equal(got, store.EventCreated)                          // the prefix is dropped
		is.Equal(store.EventTypeName(got), "orcid.record.created") // and given back
		_, err = store.ParseEventTypeName("types[1]", "bogus")
		is.Equal(err.Error(), `types[1]: "bogus": use orcid.record.updated or orcid.record.created`)
	})
}

// TestUniqueConflicts: a name or id already taken is a Conflict naming the field,
// known by SQLite's constraint code and not by the text of its message.
func TestUniqueConflicts(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := newStore(t)
	_, err := st.CreateOrganisation(ctx, "Uni", "t@uni.example")
	is.NoErr(err)
	_, err = st.CreateOrganisation(ctx, "Uni", "x@uni.example")
	e := fieldErr(t, err)
	is.Equal(e.Code, store.Conflict) // the name is taken
	is.Equal(e.Field, "name")
	is.Equal(e.Error(), `name: an organisation named "Uni" already exists`)

	c, err := st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	is.NoErr(err)
	_, err = st.CreateClient(ctx, store.NewClient{ID: c.ID, Name: "other", Secret: "long-enough", Scopes: []string{store.ScopeWebhook}})
	e = fieldErr(t, err)
	is.Equal(e.Code, store.Conflict) // the id is taken (the primary key)
	is.Equal(e.Field, "id")
	_, err = st.CreateClient(ctx, store.NewClient{Name: "lab", Scopes: []string{store.ScopeWebhook}})
	e = fieldErr(t, err)
	is.Equal(e.Code, store.Conflict) // the name is taken (a unique column)
	is.Equal(e.Field, "name")

	_, err = st.CreateClient(ctx, store.NewClient{ID: store.ActorAdminToken, Name: "sneaky", Secret: "long-enough", Scopes: []string{store.ScopeWebhook}})
	e = fieldErr(t, err)
	is.Equal(e.Code, store.Invalid) // the operator's name in the audit log is no client's id
	is.Equal(e.Field, "id")
	is.Equal(e.Error(), `id: "admin-token" is reserved for the operator's admin token; choose another id`)
}
