package awssecrets_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/kilometers-ai/kilometers/shared/awssecrets"
	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/dbconfig/dbconfigtest"
)

var _ dbconfig.Secrets = (*awssecrets.Client)(nil)

// Against a real Secrets Manager API (moto_server), through the default
// AWS configuration: a string secret reads back, a binary one and a
// missing one fail with what is wrong.
func TestSecretString_Moto(t *testing.T) {
	moto := dbconfigtest.StartMoto(t)
	moto.Setenv(t)
	ctx := context.Background()
	c := awssecrets.New()

	arn := moto.CreateSecret(t, "kilometers/plain", "the value")
	if v, err := c.SecretString(ctx, arn); err != nil || v != "the value" {
		t.Errorf("string secret: %q, %v", v, err)
	}

	out, err := moto.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("kilometers/binary"),
		SecretBinary: []byte{1, 2, 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SecretString(ctx, aws.ToString(out.ARN)); err == nil || !strings.Contains(err.Error(), "has no SecretString") {
		t.Errorf("binary secret: %v, want an error saying it has no SecretString", err)
	}

	if _, err := c.SecretString(ctx, "kilometers/missing"); err == nil || !strings.Contains(err.Error(), "ResourceNotFound") {
		t.Errorf("missing secret: %v, want ResourceNotFound", err)
	}
}

// A configuration the SDK cannot load fails the read, and is loaded again
// on the next one.
func TestSecretStringBadConfiguration(t *testing.T) {
	moto := dbconfigtest.StartMoto(t)
	moto.Setenv(t)
	ctx := context.Background()
	arn := moto.CreateSecret(t, "kilometers/later", "v")
	c := awssecrets.New()
	t.Setenv("AWS_MAX_ATTEMPTS", "not-a-number")
	if _, err := c.SecretString(ctx, arn); err == nil || !strings.Contains(err.Error(), "load AWS configuration") {
		t.Fatalf("bad configuration: %v, want an error loading it", err)
	}
	t.Setenv("AWS_MAX_ATTEMPTS", "3")
	if v, err := c.SecretString(ctx, arn); err != nil || v != "v" {
		t.Errorf("after the fix: %q, %v", v, err)
	}
}
