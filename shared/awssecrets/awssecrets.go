// Package awssecrets reads secrets from AWS Secrets Manager for the Lambda
// functions (dbconfig.Secrets). It is the only package of the backend that
// links the AWS SDK's configuration and Secrets Manager client, so the
// self-hosted server, which reads no secret, does not.
package awssecrets

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Client reads secrets with a Secrets Manager client built on first use
// from the default AWS configuration (region, credentials and
// AWS_ENDPOINT_URL from the environment): a function that never reads a
// secret never loads it, and a failed load is tried again on the next read.
type Client struct {
	mu sync.Mutex
	sm *secretsmanager.Client
}

// New returns a Client.
func New() *Client { return &Client{} }

// SecretString returns the SecretString of the secret id (an ARN or name).
func (c *Client) SecretString(ctx context.Context, id string) (string, error) {
	sm, err := c.client(ctx)
	if err != nil {
		return "", err
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("get secret value: %w", err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("secret %s has no SecretString", id)
	}
	return *out.SecretString, nil
}

func (c *Client) client(ctx context.Context) (*secretsmanager.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sm != nil {
		return c.sm, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	c.sm = secretsmanager.NewFromConfig(cfg)
	return c.sm, nil
}
