// Command admin is the Lambda function that serves the admin routes (tenants and API keys)
// behind an API Gateway HTTP API. Build it as bootstrap for provided.al2023:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./functions/admin
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kilometers-ai/kilometers/shared/dbconfig"
	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg := dbconfig.New(os.Getenv)
	// The pool is built once per cold start, on first use, and the first
	// use is retried while it fails: a cold start with the database down
	// answers 503 instead of crashing.
	store := dbconfig.NewLazyStore(dbconfig.Postgres(cfg))
	handler := httpapi.New(httpapi.Config{
		Store:      store,
		Routes:     httpapi.Admin,
		AdminToken: cfg.AdminToken,
		Logger:     logger,
	})
	lambda.Start(lambdahttp.Handler(handler))
}
