package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"hookd/dispatch"
	"hookd/membercsv"
	"hookd/orcid"
	"hookd/store"
)

// findOrg resolves an organisation given by id or name.
func findOrg(ctx context.Context, st *store.Store, ref string) (store.Organisation, error) {
	// Names are kept without the spaces around them: " Uni " is Uni, as typed in
	// quotes from a list that pads them.
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return store.Organisation{}, usagef("name the organisation (its id or name)")
	}
	byName, err := st.OrganisationByName(ctx, ref)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Organisation{}, err
	}
	named := err == nil
	var removing error // the organisation of that name or id is being removed
	if errors.Is(err, store.ErrBeingRemoved) {
		removing = err
	}
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		o, err := st.Organisation(ctx, id)
		if err == nil {
			if named && byName.ID != o.ID {
				// An older hookd took names that are numbers.
				return store.Organisation{}, fmt.Errorf("%q is organisation %d's id and organisation %d's name: give %d or rename one", ref, o.ID, byName.ID, byName.ID)
			}
			if removing != nil {
				// The name of one being removed, which its removal (hookd org
				// remove) finds by it: taking the id would act on another.
				return store.Organisation{}, fmt.Errorf("%q is organisation %d's id and the name of an organisation being removed (hookd org list says which): "+
					"give %s for organisation %d, or the id of the one being removed", ref, o.ID, shellWord(o.Name), o.ID)
			}
			return o, nil
		}
		if errors.Is(err, store.ErrBeingRemoved) {
			if named {
				// The id of one being removed, which hookd org list tells to
				// finish by it: taking the name would act on another.
				return store.Organisation{}, fmt.Errorf("%q is organisation %d's name and the id of organisation %d, which is being removed: "+
					"give %d for organisation %d, or the name of the one being removed", ref, byName.ID, id, byName.ID, byName.ID)
			}
			if removing == nil {
				removing = err
			}
		}
	}
	if !named {
		if removing != nil {
			return store.Organisation{}, removing
		}
		return store.Organisation{}, &store.Error{Code: store.NotFound, Message: fmt.Sprintf("no organisation with id or name %q (hookd org list shows them)", ref)}
	}
	return byName, nil
}

// orgFilterError is findOrg's error about the -org of a filter ("only this
// organisation's"): one that names no organisation is a value the filter does not
// take, a usage error, as a filter naming nothing is for the API (400).
func orgFilterError(cmd string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return usagef("%s: -org: %v", cmd, err)
	}
	return fmt.Errorf("%s: -org: %w", cmd, err)
}

// orgFlags are the flags of org add and org set, by the field names of the store's errors.
var orgFlags = map[string]string{
	"name": "name", "tech-contact-email": "tech-contact", "url": "url", "notification-email": "notification-email",
	"apikey": "apikey-file",
}

type orgOut struct {
	ID               int64  `json:"id"`
	Name             string `json:"name"`
	TechContactEmail string `json:"tech_contact_email"`
	Members          int    `json:"members"`
}

func (e *env) orgAdd(ctx context.Context, args []string) error {
	fs, path := e.flags("org add")
	name := fs.String("name", "", "organisation name (unique)")
	contact := fs.String("tech-contact", "", "technical contact e-mail address")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	st, _, err := e.open(ctx, "org add", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	o, err := st.CreateOrganisation(ctx, *name, *contact)
	if err != nil {
		return flagError("org add", err, orgFlags)
	}
	if *asJSON {
		return e.printJSON(orgOut{o.ID, o.Name, o.TechContactEmail, o.Members})
	}
	fmt.Fprintf(e.stdout, "organisation %d %q created (technical contact %s)\n", o.ID, o.Name, o.TechContactEmail)
	fmt.Fprintf(e.stdout, "next: hookd org set %d -url https://… -enabled  and/or  -email ; then hookd org member import -org %d FILE.csv\n", o.ID, o.ID)
	return nil
}

func (e *env) orgList(ctx context.Context, args []string) error {
	fs, path := e.flags("org list")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	st, _, err := e.open(ctx, "org list", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	list, err := st.Organisations(ctx)
	if err != nil {
		return err
	}
	var removals []store.Removal // the organisations the list leaves out, said after it
	if !*asJSON {
		if removals, err = st.Removals(ctx); err != nil {
			return fmt.Errorf("org list: %w", err)
		}
	}
	if *asJSON {
		out := []orgOut{}
		for _, o := range list {
			out = append(out, orgOut{o.ID, o.Name, o.TechContactEmail, o.Members})
		}
		return e.printJSON(out)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "ID\tNAME\tTECH CONTACT\tMEMBERS")
	for _, o := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\n", o.ID, cell(o.Name), o.TechContactEmail, o.Members)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	e.noteRemovals(removals, false)
	return nil
}

// orgRemove removes an organisation with its members, its settings and its
// staff clients with what they registered, as the Hub API's DELETE does
// (store.DeleteOrganisation: a batch a transaction, giving way to a daemon
// beside it between two); given one whose removal began and did not finish, it
// finishes it.
func (e *env) orgRemove(ctx context.Context, args []string) error {
	const cmd = "org remove"
	fs, path := e.flags(cmd)
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if strings.TrimSpace(pos[0]) == "" { // before anything is opened
		return usagef("%s: ORG is empty: give the organisation's id or name (hookd org list shows them)", cmd)
	}
	st, cfg, err := e.open(ctx, cmd, *path)
	if err != nil {
		return err
	}
	defer st.Close()
	o, err := findOrg(ctx, st, pos[0])
	var begun *store.Removal // its removal, begun before
	if errors.Is(err, store.ErrBeingRemoved) {
		if begun, err = orgRemoval(ctx, st, pos[0]); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		o = store.Organisation{ID: begun.Org, Name: begun.Name}
	} else if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	unsent := e.unregistrationsQueued(ctx, st, cfg.Store.Path, cmd)
	if err := st.DeleteOrganisation(ctx, o.ID); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer unsent()
	const rest = "its webhook and e-mail settings, and its staff clients with what they registered (the deliveries stay as history until retention)"
	if begun != nil {
		fmt.Fprintf(e.stdout, "removed organisation %d %q: finished its removal, begun before, which had %s and %s left, with %s\n",
			o.ID, o.Name, removalLeft(begun.Webhooks, "webhook", "webhooks"), removalLeft(begun.Members, "member", "members"), rest)
		return nil
	}
	fmt.Fprintf(e.stdout, "removed organisation %d %q with %s, %s\n", o.ID, o.Name, count(o.Members, "member", "members"), rest)
	return nil
}

// unregistrationsQueued counts the upstream unregistrations waiting before a
// command removes members or an organisation; the func it returns, called after
// the command's output, says on stderr when the command queued more and no
// daemon runs on the database at db to send them: they wait, and ORCID goes on
// calling for those records, until hookd serve (or hookd dev) starts on it.
func (e *env) unregistrationsQueued(ctx context.Context, st *store.Store, db, cmd string) func() {
	if !noDaemonOn(db) {
		return func() {}
	}
	before, err := st.UpstreamUnregistrationsWaiting(ctx)
	if err != nil {
		return func() {}
	}
	return func() {
		after, err := st.UpstreamUnregistrationsWaiting(ctx)
		if err != nil || after <= before || !noDaemonOn(db) {
			return
		}
		n := after - before
		fmt.Fprintf(e.stderr, "hookd: %s: queued %s upstream (of records no organisation covers now); "+
			"no hookd runs on this database to send %s: start hookd serve (or hookd dev) on it\n",
			cmd, count(n, "unregistration", "unregistrations"), them(n))
	}
}

// orgRemoval is the removal, begun and not finished, of the organisation ref
// names (its id, or else its name, as findOrg reads them).
func orgRemoval(ctx context.Context, st *store.Store, ref string) (*store.Removal, error) {
	ref = strings.TrimSpace(ref)
	removals, err := st.Removals(ctx)
	if err != nil {
		return nil, err
	}
	id, _ := strconv.ParseInt(ref, 10, 64)
	var named *store.Removal
	for i, r := range removals {
		switch {
		case r.Client != "":
		case r.Org == id:
			return &removals[i], nil
		case r.Name == ref && named == nil:
			named = &removals[i]
		}
	}
	if named == nil { // finished meanwhile (by the daemon, or another command)
		return nil, &store.Error{Code: store.NotFound, Message: fmt.Sprintf("no organisation with id or name %q: its removal has finished", ref)}
	}
	return named, nil
}

// removalLeft is how many things of a removal are left, as store.Removals counts
// them: up to store.RemovalsCounted.
func removalLeft(n int, one, many string) string {
	if n >= store.RemovalsCounted {
		return fmt.Sprintf("%d or more %s", store.RemovalsCounted, many)
	}
	return count(n, one, many)
}

// openOrg runs the start of a command that takes [-json] ORG: it parses args,
// opens the database and finds the organisation. more, when given, adds the
// command's other flags.
func (e *env) openOrg(ctx context.Context, cmd string, args []string, more ...func(*flag.FlagSet)) (st *store.Store, o store.Organisation, asJSON bool, err error) {
	st, o, asJSON, _, _, err = e.openOrgConfig(ctx, cmd, args, more...)
	return st, o, asJSON, err
}

// openOrgConfig is openOrg that also returns the configuration read and the
// -config flag's value.
func (e *env) openOrgConfig(ctx context.Context, cmd string, args []string, more ...func(*flag.FlagSet)) (st *store.Store, o store.Organisation, asJSON bool, cfg Config, cfgFlag string, err error) {
	fs, path := e.flags(cmd)
	jsonFlag := fs.Bool("json", false, "print JSON")
	for _, m := range more {
		m(fs)
	}
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return nil, o, false, cfg, "", err
	}
	if st, cfg, err = e.open(ctx, cmd, *path); err != nil {
		return nil, o, false, cfg, "", err
	}
	if o, err = findOrg(ctx, st, pos[0]); err != nil {
		st.Close()
		return nil, o, false, cfg, "", fmt.Errorf("%s: %w", cmd, err)
	}
	return st, o, *jsonFlag, cfg, *path, nil
}

// orgShow prints an organisation and its settings; with e-mail on and no SMTP relay
// configured, a warning on stderr too.
func (e *env) orgShow(ctx context.Context, args []string) error {
	st, o, asJSON, cfg, cfgFlag, err := e.openOrgConfig(ctx, "org show", args)
	if err != nil {
		return err
	}
	defer st.Close()
	h, err := st.HubSettings(ctx, o.ID)
	if err != nil {
		return err
	}
	e.warnNoRelay(h.EmailEnabled, cfg, cfgFlag)
	if asJSON {
		type settings struct {
			Enabled           bool   `json:"enabled"`
			URL               string `json:"url"`
			AppendOrcid       bool   `json:"append_orcid"`
			APIKeySet         bool   `json:"apikey_set"`
			WebhookReason     string `json:"webhook_deactivated_reason,omitempty"`
			EmailEnabled      bool   `json:"email_notifications_enabled"`
			NotificationEmail string `json:"notification_email"`
			EmailReason       string `json:"email_deactivated_reason,omitempty"`
		}
		return e.printJSON(struct {
			orgOut
			Webhook settings `json:"webhook"`
		}{orgOut{o.ID, o.Name, o.TechContactEmail, o.Members}, settings{h.Enabled, h.URL, h.AppendOrcid, h.APIKeySet,
			h.WebhookReason, h.EmailEnabled, h.NotificationEmail, h.EmailReason}})
	}
	fmt.Fprintf(e.stdout, "organisation %d %q\n  technical contact  %s\n  members            %d\n", o.ID, o.Name, o.TechContactEmail, o.Members)
	fmt.Fprintf(e.stdout, "  webhook            %s\n", onOff(h.Enabled, h.URL, h.WebhookReason))
	if h.URL != "" {
		fmt.Fprintf(e.stdout, "  append-orcid       %v\n  apikey             %s\n", h.AppendOrcid, map[bool]string{true: "set", false: "not set"}[h.APIKeySet])
	}
	to := h.NotificationEmail
	if to == "" {
		to = o.TechContactEmail + " (the technical contact)"
	}
	fmt.Fprintf(e.stdout, "  e-mail             %s\n", onOff(h.EmailEnabled, to, h.EmailReason))
	return nil
}

// warnNoRelay warns, when e-mail is on, that the configuration (naming the file,
// or the built-in one) names no SMTP relay to send it through.
func (e *env) warnNoRelay(emailOn bool, cfg Config, cfgFlag string) {
	if !emailOn || cfg.EmailRelay() {
		return
	}
	where := "the built-in configuration (no -config given and HOOKD_CONFIG not set)"
	if file, from := e.configFile(cfgFlag); file != "" {
		where = file
		if cfgFlag == "" {
			where += " (" + from + ")"
		}
	}
	fmt.Fprintf(e.stderr, "warning: e-mail notifications are on, but %s sets no [email] smtp_addr and from: hookd cannot send them, and each fails until it can\n", where)
}

func onOff(on bool, what, reason string) string {
	switch {
	case on:
		return "on: " + what
	case reason != "":
		return "off (" + reason + "): " + what
	case what != "":
		return "off: " + what
	}
	return "off"
}

// apikeyFileError says what is wrong with the path given to -apikey-file, which
// could not be read (err): a folder, or a path through a file, named as such.
func apikeyFileError(path string, err *os.PathError) string {
	if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
		return fmt.Sprintf("%s is a folder: give the file in it that holds the apikey", path)
	}
	for d := filepath.Dir(path); d != filepath.Dir(d) && d != "."; d = filepath.Dir(d) {
		if fi, serr := os.Stat(d); serr == nil && !fi.IsDir() {
			return fmt.Sprintf("%s: %s is a file, not a folder: give the path of the file that holds the apikey", path, d)
		}
	}
	return err.Error()
}

func (e *env) orgSet(ctx context.Context, args []string) error {
	fs, path := e.flags("org set")
	name := fs.String("name", "", "new name")
	contact := fs.String("tech-contact", "", "new technical contact e-mail")
	hookURL := fs.String("url", "", "webhook URL (the Hub JSON is POSTed there)")
	enabled := fs.Bool("enabled", false, "turn the webhook on or off")
	appendOrcid := fs.Bool("append-orcid", false, "append /{orcid} to the webhook URL")
	apikeyFile := fs.String("apikey-file", "", "file holding the value of the apikey header")
	clearKey := fs.Bool("clear-apikey", false, "send no apikey header")
	email := fs.Bool("email", false, "turn e-mail notifications on or off")
	notify := fs.String("notification-email", "", "address for e-mail notifications (\"\" for the technical contact)")
	pos, err := e.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(set) == 0 || len(set) == 1 && set["config"] {
		// As inbox set: nothing to set is a slip ("hookd org set Uni $FLAGS",
		// FLAGS unset), not a way to show the settings.
		return usagef("org set: give what to change: -name, -tech-contact, -url, -enabled, -append-orcid, -apikey-file or -clear-apikey, -email, -notification-email (hookd org show %s shows the settings)", shellWord(pos[0]))
	}
	// A file named empty (-apikey-file "$F", F unset) is typed wrong, before
	// anything is opened; an empty file is refused below, as failed.
	if err := refuseEmpty("org set", fs, "", []emptyFlag{
		{"apikey-file", "give the file that holds the apikey, or -clear-apikey to send none"},
	}); err != nil {
		return err
	}
	st, cfg, err := e.open(ctx, "org set", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	// Check every value before changing anything: bad input changes nothing.
	if set["notification-email"] && *notify != "" {
		if err := store.CheckMailbox("notification-email", *notify); err != nil {
			return flagError("org set", err, orgFlags)
		}
	}
	if set["apikey-file"] && *clearKey {
		return usagef("org set: give -apikey-file or -clear-apikey, not both")
	}
	o, err := findOrg(ctx, st, pos[0])
	if err != nil {
		return fmt.Errorf("org set: %w", err)
	}
	h, err := st.HubSettings(ctx, o.ID)
	if err != nil {
		return err
	}
	changed := false
	if set["url"] {
		h.URL, changed = *hookURL, true
		if !set["enabled"] && *hookURL != "" {
			h.Enabled = true // giving a URL turns the webhook on unless -enabled=false says otherwise
		}
	}
	if set["enabled"] {
		h.Enabled, changed = *enabled, true
	}
	if set["append-orcid"] {
		h.AppendOrcid, changed = *appendOrcid, true
	}
	if (set["url"] || set["append-orcid"]) && h.URL != "" {
		// The URL as it will be called: hookd's own …/inbox is a target only
		// with the iD appended (its inbox of each record).
		t := cfg.targets()
		t.Credentials, t.AppendOrcid = "give a key with -apikey-file", h.AppendOrcid
		if _, err := store.CheckTarget("url", h.URL, t); err != nil {
			return flagError("org set", err, orgFlags)
		}
	}
	h.APIKey = nil
	switch {
	case set["apikey-file"]:
		// An empty file (a key never written to it) is refused, as the
		// configuration's *_file keys are: -clear-apikey removes the key.
		k, err := readSecretFile("-apikey-file", *apikeyFile)
		if err == nil && k == "" {
			err = errors.New("-apikey-file: give the file that holds the apikey")
		}
		if errors.Is(err, os.ErrNotExist) {
			// The receiver's key is written to a file first (README, "For
			// institutions"): a missing file is that step not taken, not a
			// key to remove.
			return fmt.Errorf("org set: %w: write the apikey the receiver expects into that file first, or leave -apikey-file out when the receiver expects none; nothing was changed", err)
		}
		if pe := (*os.PathError)(nil); errors.As(err, &pe) {
			// A file that cannot be read (a folder, a path through a file, one
			// this user may not read): the path is wrong, not the key.
			return fmt.Errorf("org set: -apikey-file: %s; nothing was changed", apikeyFileError(*apikeyFile, pe))
		}
		if err != nil {
			return fmt.Errorf("org set: %w (-clear-apikey removes the apikey)", err)
		}
		h.APIKey, changed = &k, true
	case *clearKey:
		k := ""
		h.APIKey, changed = &k, true
	}
	if set["email"] {
		h.EmailEnabled, changed = *email, true
	}
	if set["notification-email"] {
		h.NotificationEmail, changed = *notify, true
	}
	if changed {
		if err := h.Check(); err != nil {
			return flagError("org set", err, orgFlags)
		}
		if set["append-orcid"] && *appendOrcid && h.URL == "" {
			return errors.New("org set: -append-orcid: needs the webhook's url: without one there is no webhook to append the iD to")
		}
	}
	// Everything is checked: the organisation first (its new name may be taken,
	// and then nothing has changed), then its webhook and e-mail.
	if set["name"] || set["tech-contact"] {
		var p store.OrganisationPatch
		if set["name"] {
			p.Name = name
		}
		if set["tech-contact"] {
			p.TechContactEmail = contact
		}
		if o, err = st.UpdateOrganisation(ctx, o.ID, p); err != nil {
			return flagError("org set", err, orgFlags)
		}
	}
	signing := ""
	if changed {
		out, _, err := st.SetHubSettings(ctx, o.ID, h)
		if err != nil {
			return flagError("org set", err, orgFlags)
		}
		signing = out.SigningSecret
	}
	show := []string{strconv.FormatInt(o.ID, 10)}
	if *path != "" {
		show = append(show, "-config", *path)
	}
	if err := e.orgShow(ctx, show); err != nil {
		return err
	}
	if signing != "" {
		fmt.Fprintf(e.stdout, "  signing secret     %s\n  (it signs the webhook's calls; copy it now, hookd shows it only this once: hookd org rotate-secret makes a new one)\n", signing)
	}
	return nil // (orgShow warned if e-mail is on without a relay)
}

// orgRotate gives an organisation's webhook a new signing secret and prints it once.
func (e *env) orgRotate(ctx context.Context, args []string) error {
	const cmd = "org rotate-secret"
	var revoke *bool
	st, o, asJSON, err := e.openOrg(ctx, cmd, args, func(fs *flag.FlagSet) {
		revoke = fs.Bool("revoke-previous", false, "the old secret stops signing at once (it leaked), and so does one still in the overlap of a rotation before: the new one signs alone")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	how := store.KeepPrevious
	if *revoke {
		how = store.RevokePrevious
	}
	signing, until, err := st.RotateOrgSecret(ctx, o.ID, how)
	switch {
	case errors.Is(err, store.ErrConflict): // a rotation within the overlap the last one promised
		return fmt.Errorf("%w (-revoke-previous)", flagError(cmd, err, nil))
	case errors.Is(err, store.ErrNotFound): // no webhook, so no secret
		return fmt.Errorf("%w (hookd org set %d -url URL)", flagError(cmd, err, nil), o.ID)
	case err != nil:
		return flagError(cmd, err, nil)
	}
	if asJSON {
		return e.printJSON(struct {
			SigningSecret string    `json:"signing_secret"`
			PreviousUntil time.Time `json:"previous_secret_valid_until,omitzero"`
		}{signing, until})
	}
	fmt.Fprintf(e.stdout, "New signing secret of organisation %d %q (copy it now, hookd shows it only this once):\n  %s\n", o.ID, o.Name, signing)
	switch {
	case *revoke:
		fmt.Fprintln(e.stdout, "The secrets before it no longer sign: only this one does.")
	case !until.IsZero():
		fmt.Fprintf(e.stdout, "The old one keeps signing beside it until %s.\n", until.Local().Format(time.RFC3339))
	}
	return nil
}

// memberFlags are the flags of org member add, by the field names of the store's errors.
var memberFlags = map[string]string{"name": "name", "email": "email", "eppn": "eppn"}

// orcidArgs reads iDs given as arguments (bare or as https://orcid.org/ URLs) and
// checks them all.
func orcidArgs(cmd string, args []string) ([]string, error) {
	ids := make([]string, len(args))
	for i, a := range args {
		ids[i] = orcid.Normalize(a)
		if err := orcid.Check(ids[i]); err != nil {
			return nil, usagef("%s: %w", cmd, err) // an argument has no field name to show
		}
	}
	return ids, nil
}

// distinct is ids without the repeats of an iD named more than once (as typed,
// or bare and as its URL), in the order first given: each is one member, added
// or removed once, and told once.
func distinct(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (e *env) memberAdd(ctx context.Context, args []string) error {
	fs, path := e.flags("org member add")
	org := fs.String("org", "", "organisation id or name")
	name := fs.String("name", "", "member name (with one ORCID)")
	email := fs.String("email", "", "member e-mail (with one ORCID)")
	eppn := fs.String("eppn", "", "member eduPersonPrincipalName (with one ORCID)")
	pos, err := e.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *org == "" { // before anything is opened
		return usagef("org member add: -org is required: the organisation's id or name")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	info := store.MemberInfo{}
	if set["name"] {
		info.Name = name
	}
	if set["email"] {
		info.Email = email
	}
	if set["eppn"] {
		info.EPPN = eppn
	}
	ids, err := orcidArgs("org member add", pos)
	if err != nil {
		return err // before anything changes
	}
	ids = distinct(ids)
	if (set["name"] || set["email"] || set["eppn"]) && len(ids) > 1 {
		// One person's name and address given to every record named would rename
		// the members there are already, and send each one's webhook calls the
		// same e-mail address.
		return usagef("org member add: -name, -email and -eppn describe one member: give one ORCID with them (several members' details go in a CSV file: hookd org member import)")
	}
	st, cfg, err := e.open(ctx, "org member add", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	o, err := findOrg(ctx, st, *org)
	if err != nil {
		return fmt.Errorf("org member add: -org: %w", err)
	}
	for _, id := range ids {
		created, changed, err := st.PutMemberChanged(ctx, o.ID, id, info, cfg.Delivery.CoalesceWindow.Duration)
		if err != nil {
			return flagError("org member add", err, memberFlags)
		}
		if created {
			fmt.Fprintf(e.stdout, "%s added to %q\n", id, o.Name)
		} else if changed {
			fmt.Fprintf(e.stdout, "%s already a member of %q (its details updated)\n", id, o.Name)
		} else if set["name"] || set["email"] || set["eppn"] {
			fmt.Fprintf(e.stdout, "%s already a member of %q, with the details given: nothing changed\n", id, o.Name)
		} else {
			fmt.Fprintf(e.stdout, "%s already a member of %q: nothing changed\n", id, o.Name)
		}
	}
	return nil
}

func (e *env) memberRemove(ctx context.Context, args []string) error {
	fs, path := e.flags("org member remove")
	org := fs.String("org", "", "organisation id or name")
	pos, err := e.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *org == "" { // before anything is opened
		return usagef("org member remove: -org is required: the organisation's id or name")
	}
	ids, err := orcidArgs("org member remove", pos)
	if err != nil {
		return err
	}
	ids = distinct(ids)
	st, cfg, err := e.open(ctx, "org member remove", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	o, err := findOrg(ctx, st, *org)
	if err != nil {
		return fmt.Errorf("org member remove: -org: %w", err)
	}
	unsent := e.unregistrationsQueued(ctx, st, cfg.Store.Path, "org member remove")
	if err := st.RemoveMembers(ctx, o.ID, ids...); err != nil { // all or none
		return fmt.Errorf("%w (none removed)", flagError("org member remove", err, nil))
	}
	defer unsent()
	for _, id := range ids {
		fmt.Fprintf(e.stdout, "%s removed from %q\n", id, o.Name)
	}
	return nil
}

func (e *env) memberImport(ctx context.Context, args []string) error {
	fs, path := e.flags("org member import")
	org := fs.String("org", "", "organisation id or name")
	strict := fs.Bool("strict", false, "import nothing when any row is rejected")
	// The arguments are counted after -org is: an organisation given as an
	// argument ("org member import Uni members.csv", as org show takes it) is
	// told as a missing -org, not blamed on the file.
	pos, err := e.parse(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *org == "" { // before anything is opened
		return usagef("org member import: -org is required: the organisation's id or name")
	}
	if len(pos) > 1 {
		c, _ := lookup("org member import")
		return usagef("org member import: unexpected argument %q%s (usage: %s)", pos[1], boolValueTaken(fs, args, 1), c.synopsis())
	}
	if err := needArg("org member import", "FILE.csv", "the CSV file of the members to import", pos[0]); err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("org member import: %w", err)
	}
	defer f.Close()
	st, cfg, err := e.open(ctx, "org member import", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	o, err := findOrg(ctx, st, *org)
	if err != nil {
		return fmt.Errorf("org member import: -org: %w", err)
	}
	file, err := membercsv.Parse(f)
	if err != nil {
		return fmt.Errorf("org member import: %s: %w; nothing was imported", pos[0], err)
	}
	// The rejected rows, by line: the file's, and those the store left out (a
	// name or eppn with a character that shows as nothing, other than the
	// member's own).
	report := func(rej []membercsv.Rejected) {
		slices.SortStableFunc(rej, func(a, b membercsv.Rejected) int { return a.Line - b.Line })
		for _, r := range rej {
			fmt.Fprintf(e.stderr, "%s:%d: rejected %q: %s\n", pos[0], r.Line, r.Orcid, r.Reason)
		}
	}
	if *strict && len(file.Rejected) > 0 {
		report(file.Rejected)
		return fmt.Errorf("org member import: %s: %s rejected; nothing imported (-strict)", pos[0], count(len(file.Rejected), "row", "rows"))
	}
	importMembers := st.ImportMembers
	if *strict {
		importMembers = st.ImportMembersStrict
	}
	res, err := importMembers(ctx, o.ID, file.Rows, cfg.Delivery.CoalesceWindow.Duration)
	if err != nil {
		report(file.Rejected)
		// In the command's words, not the store's step; one transaction, so none
		// of the rows is in.
		if se := (*store.Error)(nil); errors.As(err, &se) {
			err = se
		}
		return fmt.Errorf("org member import: %s: %w; nothing was imported", pos[0], err)
	}
	rej := slices.Clone(file.Rejected)
	for _, r := range res.Rejected {
		rej = append(rej, membercsv.Rejected{Line: r.Line, Orcid: r.Orcid, Reason: r.Reason})
	}
	report(rej)
	rejected := len(rej)
	if *strict && len(res.Rejected) > 0 {
		return fmt.Errorf("org member import: %s: %s rejected; nothing imported (-strict)", pos[0], count(rejected, "row", "rows"))
	}
	fmt.Fprintf(e.stdout, "%s: %s added, %d updated, %s%d rejected (organisation %q)\n", pos[0], count(res.Added, "member", "members"), res.Updated, unchanged(res.Unchanged), rejected, o.Name)
	return nil
}

// unchanged is what an import's report says of the members it left as they
// were (rows that gave each field as the member has it: a file imported again),
// after those it updated: nothing when there are none.
func unchanged(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n) + " unchanged, "
}

func (e *env) orgStatus(ctx context.Context, args []string) error {
	fs, path := e.flags("org status")
	org := fs.String("org", "", "only this organisation (id or name); or give it as the argument")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := e.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	if err := refuseEmpty("org status", fs, "", []emptyFlag{
		{"org", "give an organisation's id or name, or leave -org out for every organisation's members"},
	}); err != nil {
		return err
	}
	// "org status Uni", as "org show Uni" and "org set Uni" name it, or -org Uni.
	orgErr := func(err error) error { return orgFilterError("org status", err) }
	if len(pos) == 1 {
		if *org != "" {
			return usagef("org status: unexpected argument %q: -org %s names the organisation already", pos[0], *org)
		}
		if err := needArg("org status", "ORG", "an organisation's id or name, or leave it out for every organisation's members", pos[0]); err != nil {
			return err
		}
		*org = pos[0]
		orgErr = func(err error) error { // names what was typed: the argument, not a -org never given
			if errors.Is(err, store.ErrNotFound) {
				return usagef("org status: %v", err)
			}
			return fmt.Errorf("org status: %w", err)
		}
	}
	st, _, err := e.open(ctx, "org status", *path)
	if err != nil {
		return err
	}
	defer st.Close()
	var orgs []store.Organisation
	if *org != "" {
		o, err := findOrg(ctx, st, *org)
		if err != nil {
			return orgErr(err)
		}
		orgs = []store.Organisation{o}
	} else if orgs, err = st.Organisations(ctx); err != nil {
		return err
	}
	// The figures are of the members listed: one organisation's when one is named.
	up, err := st.UpstreamStatus(ctx)
	if *org != "" {
		up, err = st.UpstreamStatusOf(ctx, orgs[0].ID)
	}
	if err != nil {
		return err
	}
	type memberOut struct {
		Org      string `json:"organisation"`
		Orcid    string `json:"orcid"`
		Upstream string `json:"upstream,omitempty"` // none without [upstream]
	}
	// The members a page at a time, each printed before the next is read (as
	// webhooks list does): an organisation's hundreds of thousands at once held
	// them all in memory, twice over in the table.
	var list *jsonList
	var out spool // the JSON, printed once every member is read
	defer out.discard()
	if *asJSON {
		// As printJSON writes the object, its keys in order, with the list streamed.
		fmt.Fprintf(&out, "{\n  \"failed\": %d,\n  \"members\": ", up.Failed)
		list = newJSONListIn(&out, "  ")
	} else if !up.On {
		fmt.Fprintln(e.stdout, "upstream registration: off ([upstream] is not configured, or hookd serve has not started with it)")
	} else {
		fmt.Fprintf(e.stdout, "upstream registration: on; %d registered, %d pending, %d failing\n", up.Registered, up.Pending, up.Failed)
	}
	heading := true // the table's, on its first page
	// Each page is laid out as the whole table was: the organisation's column as
	// wide as the longest name of one with members, the iDs' as an iD.
	widths := []int{textWidth("ORGANISATION"), textWidth("ORCID")}
	for _, o := range orgs {
		if o.Members > 0 {
			widths = []int{max(widths[0], textWidth(cell(o.Name))), max(widths[1], len("0000-0000-0000-0000"))}
		}
	}
	printPage := func(org string, ms []store.Member) error {
		tw := newTable(e.stdout)
		tw.min = widths
		if heading {
			fmt.Fprintln(tw, "ORGANISATION\tORCID\tUPSTREAM")
			heading = false
		}
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(org), m.Orcid, cell(cmp.Or(m.Upstream, "-")))
		}
		return tw.Flush()
	}
	for _, o := range orgs {
		for after := ""; ; {
			ms, err := st.MembersPage(ctx, o.ID, after, listPage)
			if err != nil {
				return err
			}
			if list != nil {
				for _, m := range ms {
					if err := list.add(memberOut{o.Name, m.Orcid, m.Upstream}); err != nil {
						return err
					}
				}
				if err = list.flush(); err != nil {
					err = fmt.Errorf("org status: %w", err)
				}
			} else if len(ms) > 0 || heading {
				err = printPage(o.Name, ms)
			}
			if err != nil {
				return err
			}
			if len(ms) < listPage {
				break
			}
			after = ms[len(ms)-1].Orcid
		}
	}
	if list == nil {
		if heading { // no organisation
			return printPage("", nil)
		}
		return nil
	}
	if err := list.end(); err != nil {
		return fmt.Errorf("org status: %w", err)
	}
	if _, err := fmt.Fprintf(&out, ",\n  \"pending\": %d,\n  \"registered\": %d,\n  \"upstream\": %t\n}\n", up.Pending, up.Registered, up.On); err != nil {
		return fmt.Errorf("org status: %w", err)
	}
	return out.copyTo(e.stdout)
}

// hubOptions builds the dispatcher's Hub settings from [email] and [upstream],
// reading the secret files.
func hubOptions(cfg Config, public string) (dispatch.HubOptions, error) {
	var h dispatch.HubOptions
	h.Email = dispatch.EmailOptions{Addr: cfg.Email.SMTPAddr, Username: cfg.Email.Username, From: cfg.Email.From, StartTLS: cfg.Email.StartTLS, ImplicitTLS: cfg.Email.ImplicitTLS}
	var err error
	if h.Email.Password, err = readSecretFile("email.password_file", cfg.Email.PasswordFile); err != nil {
		return h, err
	}
	if u := cfg.Upstream; u.APIURL != "" {
		sec, err := readSecretFile("upstream.client_secret_file", u.ClientSecretFile)
		if err != nil {
			return h, err
		}
		h.Upstream = dispatch.UpstreamOptions{APIURL: u.APIURL, TokenURL: u.TokenURL, ClientID: u.ClientID,
			ClientSecret: sec, PublicURL: public}
		// A record's "url" in what organisations receive is in the environment
		// the records come from (the sandbox's, QA's); production's otherwise.
		if pu, err := url.Parse(u.APIURL); err == nil {
			if env, ok := orcid.EnvironmentOf(pu.Host); ok {
				h.RecordURL = env.RecordURL
			}
		}
	}
	return h, nil
}
