package backend

import (
	"context"
	"time"

	"github.com/kilometers-ai/kilometers/shared/alerts"
)

// AlertRule is a team alert rule as the API shows it: the signing secret
// is write-only and never leaves the store.
type AlertRule struct {
	ID        string      `json:"id"`
	On        alerts.Kind `json:"on"`
	Threshold float64     `json:"threshold"`
	Window    string      `json:"window"`
	Webhook   string      `json:"webhook"`
	CreatedAt time.Time   `json:"created_at"`
}

// NewAlertRule is the body of POST /api/alerts/rules.
type NewAlertRule struct {
	On        alerts.Kind `json:"on"`
	Threshold float64     `json:"threshold"`
	// Window is a Go duration ("5m", "1h"); empty means alerts.DefaultWindow.
	Window  string `json:"window"`
	Webhook string `json:"webhook"`
	Secret  string `json:"secret"`
}

// Limits of team alert rules.
const (
	MaxAlertRules   = 100
	MaxSecretBytes  = 512
	MinAlertWindow  = time.Minute
	MaxAlertsPage   = 200
	DefaultAlertsPg = 50
)

// Validate checks a rule body; every failure is EINVALID naming the field.
// It returns the rule's window.
func (r NewAlertRule) Validate() (time.Duration, error) {
	w := alerts.DefaultWindow
	if r.Window != "" {
		d, err := time.ParseDuration(r.Window)
		if err != nil {
			return 0, Errorf(EINVALID, "window: want a duration such as 5m or 1h, got %q", r.Window)
		}
		w = d
	}
	if w < MinAlertWindow || w%time.Second != 0 {
		return 0, Errorf(EINVALID, "window: must be whole seconds, at least %s", MinAlertWindow)
	}
	if err := alerts.ValidateRule(r.On, r.Threshold, w, r.Webhook); err != nil {
		return 0, Errorf(EINVALID, "%s", err.Error())
	}
	if r.Secret == "" || len(r.Secret) > MaxSecretBytes {
		return 0, Errorf(EINVALID, "secret: required, up to %d bytes (it signs every webhook body; it is never shown again)", MaxSecretBytes)
	}
	return w, nil
}

// FiredAlert is one alert a team rule fired, with its delivery state.
type FiredAlert struct {
	alerts.Alert
	FiredAt     time.Time  `json:"fired_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// AlertQuery pages through fired alerts, newest first.
type AlertQuery struct {
	Limit  int
	Cursor string
}

// AlertPage is the answer of GET /api/alerts.
type AlertPage struct {
	Alerts     []FiredAlert `json:"alerts"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// AlertRun reports one scheduled run: window rules evaluated, alerts
// fired by them, alerts delivered, and deliveries that failed (retried on
// a later run) or were given up.
type AlertRun struct {
	Tenants   int `json:"tenants"`
	Fired     int `json:"fired"`
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	GivenUp   int `json:"given_up"`
}

// Alerting is the team alerts part of Store. Per-event rules are evaluated
// by Ingest itself, in its transaction.
type Alerting interface {
	CreateAlertRule(ctx context.Context, tenantID string, r NewAlertRule) (AlertRule, error)
	AlertRules(ctx context.Context, tenantID string) ([]AlertRule, error)
	// DeleteAlertRule is ENOTFOUND for a rule the tenant does not have.
	DeleteAlertRule(ctx context.Context, tenantID, id string) error
	// DeleteAlertRules removes every rule of the tenant.
	DeleteAlertRules(ctx context.Context, tenantID string) (int, error)
	FiredAlerts(ctx context.Context, tenantID string, q AlertQuery) (AlertPage, error)
	// RunAlerts evaluates every tenant's window rules over the last two
	// complete windows before now and delivers the alerts due, each at
	// most once per run; safe to run in several processes at once.
	RunAlerts(ctx context.Context, now time.Time) (AlertRun, error)
}
