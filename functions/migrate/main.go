// Command migrate is the Lambda function that applies the database
// migrations: CloudFormation calls it as a custom resource on every deploy
// (the answer goes to the ResponseURL), and operators may invoke it directly
// (aws lambda invoke --function-name <name> out.json).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp/customresource"
	"github.com/kilometers-ai/kilometers/shared/postgres"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := dbconfig.New(os.Getenv)
	migrate := func(ctx context.Context) error {
		dsn, err := cfg.DSN(ctx)
		if err != nil {
			return err
		}
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	}
	lambda.Start(customresource.Handler(migrate, nil, logger))
}
