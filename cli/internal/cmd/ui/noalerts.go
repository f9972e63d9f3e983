package ui

import (
	"context"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// noAlerts is the team alerts part of backend.Store for the local store:
// local rules live in the alerts file (kilometers alerts), so the
// dashboard sees no team rules or fired alerts, and every change is
// refused like any other write.
type noAlerts struct{}

func (noAlerts) CreateAlertRule(context.Context, string, backend.NewAlertRule) (backend.AlertRule, error) {
	return backend.AlertRule{}, errReadOnly()
}

func (noAlerts) AlertRules(context.Context, string) ([]backend.AlertRule, error) {
	return []backend.AlertRule{}, nil
}

func (noAlerts) DeleteAlertRule(context.Context, string, string) error { return errReadOnly() }

func (noAlerts) DeleteAlertRules(context.Context, string) (int, error) { return 0, errReadOnly() }

func (noAlerts) FiredAlerts(context.Context, string, backend.AlertQuery) (backend.AlertPage, error) {
	return backend.AlertPage{Alerts: []backend.FiredAlert{}}, nil
}

func (noAlerts) RunAlerts(context.Context, time.Time) (backend.AlertRun, error) {
	return backend.AlertRun{}, errReadOnly()
}
