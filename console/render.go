package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"hookd/store"
)

// pageTemplate is one page's template: the layout with the page's content.
type pageTemplate struct{ t *template.Template }

// assetVersion changes when the assets do, so browsers fetch them anew.
var assetVersion = func() string {
	h := sha256.New()
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := assets.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

var funcs = template.FuncMap{
	"iso": iso,
	"utc": utc,
	"ms": func(d time.Duration) string {
		if d < time.Second {
			return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
		}
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	},
	"age": age,
	// upTo writes a count that stops at a cap as "more than" the cap.
	"upTo": func(n, limit int) string {
		if n > limit {
			return "more than " + strconv.Itoa(limit)
		}
		return strconv.Itoa(n)
	},
	"figuresCap": func() int { return store.FiguresCap },
	"failingCap": func() int { return store.FailingCap },
	// beyond is an error text unless it only repeats the HTTP status shown beside it,
	// made visible: an error may quote a receiver's answer. One that begins with the
	// reason hookd switched a webhook off for shows its time as reason does.
	"beyond": func(status int, err string) template.HTML {
		if err == "HTTP "+strconv.Itoa(status) {
			return ""
		}
		return withTime(err, false)
	},
	// visible is text a receiver (or an SMTP relay) wrote, as the inbox pages show
	// what senders wrote: control characters and bidirectional overrides, which
	// would hide or reorder what follows them, shown as escapes.
	"visible": func(s string) string { return store.VisibleText(s, true) },
	// reason is why hookd switched a webhook or an organisation's e-mail off, made
	// visible (it may quote a receiver's answer), its time (failing since, a 410
	// Gone at) written as every time is, for the script to show in the reader's zone.
	"reason":    func(s string) template.HTML { return withTime(s, true) },
	"kind":      kindWord,
	"kindTitle": kindTitle,
	"sentence":  sentence,
	"target":    target,
	"stateWord": stateWord,
	"stateName": stateClass,
	"status":    statusWord,
	"add":       func(a, b int) int { return a + b },
	"count":     count,
	"join":      strings.Join,
	// dict makes a map of key, value pairs, to pass several values to a partial.
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"roleOf": func(r Role) string { return r.String() },
	// adminActor is the audit log's actor for the operator's admin token.
	"adminActor": func() string { return store.ActorAdminToken },
}

// mustParsePages parses every page of assets/templates with the layout and partials.
func mustParsePages() map[string]*pageTemplate {
	names, err := fs.Glob(assets, "assets/templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*pageTemplate{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t := template.Must(template.New(base).Funcs(funcs).ParseFS(assets,
			"assets/templates/layout.html", "assets/templates/partials.html", n))
		out[base] = &pageTemplate{t: t}
	}
	return out
}

// navItem is an entry of the main navigation.
type navItem struct {
	Label   string
	Href    string
	Current bool
}

// navPages are the sections of the navigation, in order; each is shown to the
// principals allowed to view it.
var navPages = []struct {
	page  Page
	label string
	href  string
}{
	{PageOverview, "Overview", "/console/"},
	{PageWebhooks, "Webhooks", "/console/webhooks"},
	{PageDeliveries, "Deliveries", "/console/deliveries"},
	{PageOrganisations, "Organisations", "/console/organisations"},
	{PageClients, "Clients", "/console/clients"},
	{PageInbox, "Inbox", "/console/inbox"},
	{PageAudit, "Audit log", "/console/audit"},
}

// view is what every page's template gets.
type view struct {
	Title     string
	Principal *Principal
	Nav       []navItem
	CSRF      string
	Flash     string
	Version   string
	Assets    string
	// Here is the address of a page got with a GET, its flash left out, for a
	// form on it that asks first (a removal) to lead back to it.
	Here string
	Page any
}

// here is the address of a console page u, without the flash of a change.
func here(u *url.URL) string {
	q := u.Query()
	if _, ok := q["done"]; !ok {
		return u.RequestURI()
	}
	q.Del("done")
	if len(q) == 0 {
		return u.EscapedPath()
	}
	return u.EscapedPath() + "?" + q.Encode()
}

// render writes a page with status.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	v := view{Title: title, Version: h.opts.Version, Assets: assetVersion, Page: data, Flash: flashes[r.URL.Query().Get("done")]}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// A page rendered for a form posted (a refused one) is at the form's
		// address, which is not one to come back to.
		v.Here = here(r.URL)
	}
	if s := sessionOf(r); s != nil {
		p := s.principal
		v.Principal, v.CSRF = &p, s.csrf
		section := sectionOf(r.URL.Path)
		for _, n := range navPages {
			if allowed(p, n.page, ActView, Object{}) {
				v.Nav = append(v.Nav, navItem{Label: n.label, Href: n.href, Current: n.page == section})
			}
		}
	}
	t, ok := h.pages[name]
	if !ok {
		h.internal(w, r, fmt.Errorf("no template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.t.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.internal(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	b := buf.Bytes()
	if h.base != "" {
		// Every console address a page gives the browser is the value of one of
		// addressAttrs that starts with /console/: each is put under the base path.
		// Nothing else is: a field's value may be what a reader typed (a refused
		// form's, a filter's), which is shown and sent back as typed. What a page
		// quotes of its data is escaped, so it never holds a bare quote, and never
		// starts an attribute of its own.
		for _, a := range addressAttrs {
			b = bytes.ReplaceAll(b, []byte(" "+a+`="/console/`), []byte(" "+a+`="`+h.base+`/console/`))
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// addressAttrs are the attributes whose values the pages give the browser to
// follow: links, style sheet and scripts, forms, and the inbox page's stream and
// the address its script fetches again.
var addressAttrs = []string{"href", "src", "action", "data-live", "data-page"}

// sectionOf is the navigation section a console path belongs to.
func sectionOf(p string) Page {
	seg, _, _ := strings.Cut(strings.TrimPrefix(p, "/console/"), "/")
	switch seg {
	case "":
		return PageOverview
	case "audit":
		return PageAudit
	}
	for _, n := range navPages {
		if strings.TrimPrefix(n.href, "/console/") == seg {
			return n.page
		}
	}
	return ""
}

// flashes are the messages a redirect after a change may show (by a fixed code in
// the query string, so nothing a link carries is shown as text).
var flashes = map[string]string{
	"signedout":           "You are signed out.",
	"deactivated":         "The webhook is deactivated. Its pending deliveries are dead; replay them after activating it if they are still wanted.",
	"activated":           "The webhook is active again.",
	"already-deactivated": "The webhook was deactivated already (in another tab, by someone else, or by hookd): nothing changed.",
	"already-activated":   "The webhook was active already (activated in another tab or by someone else): nothing changed.",
	"deleted":             "The webhook is deleted.",
	"deleted-none":        "The webhook is deleted. It had no deliveries.",
	"test":                "A test event is queued; it is sent at once.",
	"replayed":            "The delivery is due again and is sent at once.",
	"saved":               "The settings are saved.",
	"created":             "The organisation is created.",
	"member":              "The member is added.",
	"member-updated":      "The member is updated.",
	"member-already":      "That record is a member already, and the form gave no name, e-mail or eduPersonPrincipalName to change: nothing changed.",
	"member-same":         "That record is a member already, with the details the form gave: nothing changed.",
	"removed":             "The member is removed.",
	"not-member":          "That record was not a member (removed already, in another tab or by someone else): nothing changed.",
	"client-removed":      "The client is removed, with its tokens, registrations and sessions.",
	"answer":              "The inbox answers as set below from now on.",
	"cleared":             "The inbox is emptied.",
	"cleared-answer":      "The inbox is emptied; its answer stays as set below.",
}

// errorView is the data of the error page.
type errorView struct {
	Heading string
	Message string
	// SignIn is the sign-in link of a page for the signed-out: the sign-in page,
	// and back to a page when one is given.
	SignIn string
	// Reason is set when Message may quote why hookd switched a webhook off (a
	// replay refused for it): it is shown as the reason template func shows one.
	Reason bool
	// Links are the console pages a signed-in reader goes on to from here (a
	// refused replay's delivery, and its webhook to activate), before the overview.
	Links []pageLink
}

// pageLink is a link to a console page, and its words.
type pageLink struct {
	Href  string
	Label string
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	h.render(w, r, status, "error", heading, errorView{Heading: heading, Message: message, SignIn: "/console/signin"})
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.errorPage(w, r, http.StatusNotFound, "Not found", "There is nothing here, or it is not yours to see. Check the address, or start again from the overview.")
}

func (h *Handler) handleNotFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" {
			h.redirect(w, r, "/console/", http.StatusMovedPermanently)
			return
		}
		h.notFound(w, r)
	})
}

// handleAsset serves the style sheet and the script (the templates are not served).
func (h *Handler) handleAsset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		b, err := assets.ReadFile("assets/" + name)
		if err != nil || strings.Contains(name, "/") {
			h.notFound(w, r)
			return
		}
		w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
		if r.URL.Query().Get("v") == assetVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		w.Write(b)
	})
}

// redirectDone sends the reader to a console path after a change, with a flash code.
func (h *Handler) redirectDone(w http.ResponseWriter, r *http.Request, to, done string) {
	u, _ := url.Parse(to)
	q := u.Query()
	q.Set("done", done)
	u.RawQuery = q.Encode()
	h.redirect(w, r, u.String(), http.StatusSeeOther)
}

// iso is a time as the datetime attribute of <time> wants it (UTC).
func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// utc is a time as the page shows it before the script (if any) puts it in the
// reader's zone.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

// withTime is a text that may begin with the reason hookd switched a webhook off
// for (store.ReasonTime), made visible (store.VisibleText) and escaped, with the
// time the reason names as the "when" partial writes one: a <time> in UTC, which
// the script shows in the reader's zone with the UTC time as its title.
func withTime(s string, multiline bool) template.HTML {
	text := func(s string) string { return template.HTMLEscapeString(store.VisibleText(s, multiline)) }
	before, t, after, ok := store.ReasonTime(s)
	if !ok {
		return template.HTML(text(s))
	}
	return template.HTML(text(before) + `<time datetime="` + iso(t) + `">` + utc(t) + `</time>` + text(after))
}

// age is a duration as a person reads it: "3 min", "2 h 5 min", "4 days".
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 48*time.Hour:
		hrs, mins := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if mins == 0 {
			return strconv.Itoa(hrs) + " h"
		}
		return strconv.Itoa(hrs) + " h " + strconv.Itoa(mins) + " min"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}
