package dispatch

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"hookd/ssrf"
	"hookd/store"
)

// The defaults of Options, which are also those of the [delivery] section of
// hookd's configuration (config.example.toml).
const (
	DefaultTick          = time.Second
	DefaultTimeout       = 20 * time.Second
	DefaultRetryBase     = time.Minute
	DefaultRetryMaxDelay = 2 * time.Hour
	DefaultGiveUpAfter   = 72 * time.Hour
	DefaultDisableAfter  = 120 * time.Hour
	DefaultRetention     = 168 * time.Hour
	DefaultWorkers       = 64
	DefaultPerHost       = 8
)

// Options configures a Dispatcher; zero durations and counts take the Default
// values above.
type Options struct {
	Logger *slog.Logger
	// Store is the outbox. Its clock (Store.Now) is the dispatcher's clock too: a
	// test that pins it pins both.
	Store               *store.Store
	Tick                time.Duration
	Timeout             time.Duration
	RetryBase           time.Duration
	RetryMaxDelay       time.Duration
	GiveUpAfter         time.Duration
	DisableAfter        time.Duration
	Workers             int
	PerHost             int
	AllowPrivateTargets bool
	// Inbox, when set, is hookd's own inbox: a target on hookd's own address with a
	// path under /inbox/ is called through a client that connects only there, even
	// where private targets are refused.
	Inbox *ssrf.Inbox
	// UserAgent is sent with every call, e.g. "hookd/1.0.0".
	UserAgent string
	// LogDeliveries logs every outcome at info level (hookd dev); otherwise only
	// failures are logged, at most once a minute per host (deactivations ten a
	// minute per host, the others summed up).
	LogDeliveries bool
	// ShutdownGrace bounds how long Run waits for in-flight calls when stopping
	// (default: Timeout, at most 10s); calls still running then are cancelled and
	// their deliveries released for a later attempt.
	ShutdownGrace time.Duration
	// Rand returns a number in [0, 1) for jitter; tests pin it.
	Rand func() float64
	// Retention is how long delivered rows are kept.
	Retention time.Duration
	// AuditRetention is how long audit log entries are kept (default
	// store.DefaultAuditRetention).
	AuditRetention time.Duration
	// Hub configures e-mail and upstream registration (ORCID Hub deliveries).
	Hub HubOptions
	// Observer, when set, is told every outcome once the store has recorded it, as
	// recorded (for metrics).
	Observer Observer
}

// Observer is told what became of each claimed delivery, by the word of its
// store.OutcomeKind, once the store has recorded it: an outcome the store applied
// as another kind is told as applied, and one that could not be recorded (its
// delivery is attempted again when its lease ends) is not told.
type Observer interface {
	Outcome(outcome string, attempt time.Duration)
}

// withDefaults fills in what o leaves zero.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Tick, DefaultTick)
	def(&o.Timeout, DefaultTimeout)
	def(&o.RetryBase, DefaultRetryBase)
	def(&o.RetryMaxDelay, DefaultRetryMaxDelay)
	def(&o.GiveUpAfter, DefaultGiveUpAfter)
	def(&o.DisableAfter, DefaultDisableAfter)
	def(&o.Retention, DefaultRetention)
	def(&o.AuditRetention, store.DefaultAuditRetention)
	def(&o.ShutdownGrace, min(o.Timeout, 10*time.Second))
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.PerHost <= 0 {
		o.PerHost = DefaultPerHost
	}
	if o.UserAgent == "" {
		o.UserAgent = "hookd"
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
