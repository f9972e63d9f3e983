package dbconfig

import (
	"context"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

func (l *LazyStore) CreateAlertRule(ctx context.Context, tenantID string, r backend.NewAlertRule) (backend.AlertRule, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.AlertRule{}, err
	}
	return s.CreateAlertRule(ctx, tenantID, r)
}

func (l *LazyStore) AlertRules(ctx context.Context, tenantID string) ([]backend.AlertRule, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.AlertRules(ctx, tenantID)
}

func (l *LazyStore) DeleteAlertRule(ctx context.Context, tenantID, id string) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.DeleteAlertRule(ctx, tenantID, id)
}

func (l *LazyStore) DeleteAlertRules(ctx context.Context, tenantID string) (int, error) {
	s, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	return s.DeleteAlertRules(ctx, tenantID)
}

func (l *LazyStore) FiredAlerts(ctx context.Context, tenantID string, q backend.AlertQuery) (backend.AlertPage, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.AlertPage{}, err
	}
	return s.FiredAlerts(ctx, tenantID, q)
}

func (l *LazyStore) RunAlerts(ctx context.Context, now time.Time) (backend.AlertRun, error) {
	s, err := l.get(ctx)
	if err != nil {
		return backend.AlertRun{}, err
	}
	return s.RunAlerts(ctx, now)
}
