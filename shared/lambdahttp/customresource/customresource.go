// Package customresource runs one action (database migrations) from a
// Lambda function that is invoked either directly (aws lambda invoke) or as
// an AWS CloudFormation custom resource. For a custom resource the answer
// goes to the pre-signed ResponseURL, always, also when the action fails or
// is about to run out of time, so a stack never waits an hour for a reply.
package customresource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// PhysicalResourceID names the one resource this function manages; it never
// changes, so an update never makes CloudFormation delete the old one.
const PhysicalResourceID = "kilometers-migrations"

// replyMargin is the time kept before the Lambda deadline to send a FAILED
// reply when the action is still running.
const replyMargin = 10 * time.Second

// Result answers a direct invocation.
type Result struct {
	Status string `json:"status"`
}

// Handler returns a Lambda handler that runs action on a direct invoke and
// on a custom resource's Create and Update; Delete succeeds at once and
// leaves the database alone. client sends the reply (nil means a client with
// a 30s timeout).
func Handler(action func(ctx context.Context) error, client *http.Client, logger *slog.Logger) func(ctx context.Context, payload json.RawMessage) (Result, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return func(ctx context.Context, payload json.RawMessage) (Result, error) {
		var ev cfn.Event
		if len(bytes.TrimSpace(payload)) > 0 && payload[0] == '{' {
			if err := json.Unmarshal(payload, &ev); err != nil {
				return Result{}, fmt.Errorf("decode event: %w", err)
			}
		}
		if ev.ResponseURL == "" {
			logger.InfoContext(ctx, "direct invoke: running")
			if err := action(ctx); err != nil {
				logger.ErrorContext(ctx, "direct invoke failed", "err", err)
				return Result{}, err
			}
			logger.InfoContext(ctx, "direct invoke: done")
			return Result{Status: "ok"}, nil
		}

		resp := cfn.NewResponse(&ev)
		resp.PhysicalResourceID = ev.PhysicalResourceID
		if resp.PhysicalResourceID == "" {
			resp.PhysicalResourceID = PhysicalResourceID
		}
		logger.InfoContext(ctx, "custom resource", "request_type", ev.RequestType, "logical_id", ev.LogicalResourceID)
		err := runUnlessDelete(ctx, ev.RequestType, action)
		if err != nil {
			logger.ErrorContext(ctx, "custom resource failed", "request_type", ev.RequestType, "err", err)
			resp.Status, resp.Reason = cfn.StatusFailed, reason(err)
		} else {
			resp.Status = cfn.StatusSuccess
		}
		// Reply even when ctx is about to expire.
		replyCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), client.Timeout)
		defer cancel()
		if sendErr := send(replyCtx, client, ev.ResponseURL, resp); sendErr != nil {
			logger.ErrorContext(ctx, "custom resource reply failed", "err", sendErr)
			return Result{}, fmt.Errorf("reply to CloudFormation: %w", sendErr)
		}
		if err != nil {
			return Result{Status: "failed"}, nil
		}
		return Result{Status: "ok"}, nil
	}
}

func runUnlessDelete(ctx context.Context, requestType cfn.RequestType, action func(context.Context) error) error {
	switch requestType {
	case cfn.RequestDelete:
		return nil
	case cfn.RequestCreate, cfn.RequestUpdate:
	default:
		return fmt.Errorf("unknown RequestType %q", requestType)
	}
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-replyMargin))
		defer cancel()
	}
	if err := action(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("ran out of time (raise the function timeout): %w", err)
		}
		return err
	}
	return nil
}

// reason shortens an error for the stack's event list (CloudFormation
// keeps 4 KB of the whole reply).
func reason(err error) string {
	s := err.Error()
	if len(s) > 1000 {
		s = s[:1000] + "..."
	}
	return s + " (see the function's logs)"
}

// send PUTs the reply to the pre-signed URL. The signature covers no
// Content-Type, so none is sent.
func send(ctx context.Context, client *http.Client, url string, resp *cfn.Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build reply: %w", err)
	}
	req.ContentLength = int64(len(body))
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("send reply: %w", err)
	}
	defer res.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("reply answered %s: %s", res.Status, bytes.TrimSpace(msg))
	}
	return nil
}
