package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body,
// keyed with the rule's secret.
const SignatureHeader = "X-Kilometers-Signature"

// Sign returns the SignatureHeader value of body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Delivery tuning: attempts per alert in one run, and the first wait
// between them (doubling).
const (
	attempts     = 4
	firstBackoff = time.Second
	postTimeout  = 10 * time.Second
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

// errRefused is a webhook's 4xx: sending the alert again cannot help.
var errRefused = errors.New("webhook refused the alert")

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
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", errRefused, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.UserAgent)
	req.Header.Set(SignatureHeader, Sign(secret, body))
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post alert: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("post alert: webhook answered HTTP %d", resp.StatusCode)
	}
	return fmt.Errorf("%w: HTTP %d", errRefused, resp.StatusCode)
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
