package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	shalerts "github.com/kilometers-ai/kilometers/shared/alerts"
)

// SignatureHeader and Sign are the signature the backend's team alerts
// carry too (package shared/alerts owns it).
const SignatureHeader = shalerts.SignatureHeader

// Sign returns the SignatureHeader value of body.
func Sign(secret string, body []byte) string { return shalerts.Sign(secret, body) }

// Delivery tuning: attempts per alert in one run, and the first wait
// between them (doubling).
const (
	attempts     = 4
	firstBackoff = time.Second
	postTimeout  = shalerts.PostTimeout
)

// Sender posts alerts to their rules' webhooks.
type Sender struct {
	Client *http.Client
	Getenv func(string) string
	Logger *slog.Logger
	// UserAgent names the sender.
	UserAgent string
}

func (s *Sender) fill() {
	if s.Client == nil {
		s.Client = &http.Client{Timeout: postTimeout}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.UserAgent == "" {
		s.UserAgent = "kilometers"
	}
	if s.Getenv == nil {
		s.Getenv = os.Getenv
	}
}

var errRefused = shalerts.ErrRefused

// Send posts one alert, retrying with backoff on 5xx, 408, 429 and
// network errors, at most attempts times.
func (s *Sender) Send(ctx context.Context, r Rule, a Alert) error {
	s.fill()
	secret, err := r.signingSecret(s.Getenv)
	if err != nil {
		return err
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	wait := firstBackoff
	var last error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(last, ctx.Err())
			case <-t.C:
			}
			wait *= 2
		}
		last = s.post(ctx, r.Webhook, secret, body)
		if last == nil || errors.Is(last, errRefused) {
			return last
		}
		s.Logger.Debug("alerts: delivery failed; retrying", "rule", r.ID, "attempt", i+1, "err", last)
	}
	return last
}

func (s *Sender) post(ctx context.Context, url, secret string, body []byte) error {
	return shalerts.Post(ctx, s.Client, s.UserAgent, url, secret, body)
}

// Deliver sends the outbox's alerts in order, calling save after each
// settled one (delivered, refused, or its rule gone) so a crash re-sends at
// most the alert in flight. It stops at the first alert still failing
// after its retries, which stays in the outbox for the next run.
func (s *Sender) Deliver(ctx context.Context, st *State, rules []Rule, save func() error) (sent int, err error) {
	s.fill()
	byID := map[string]Rule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	for len(st.Outbox) > 0 {
		a := st.Outbox[0]
		r, ok := byID[a.RuleID]
		if ok {
			err := s.Send(ctx, r, a)
			if err != nil && !errors.Is(err, errRefused) {
				return sent, fmt.Errorf("deliver alert %s of rule %s: %w", a.ID, a.RuleID, err)
			}
			if err != nil {
				s.Logger.Warn("alerts: webhook refused an alert; dropped", "rule", r.ID, "alert", a.ID, "err", err)
			} else {
				sent++
			}
		}
		st.Outbox = st.Outbox[1:]
		if err := save(); err != nil {
			return sent, err
		}
	}
	return sent, nil
}
