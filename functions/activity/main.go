// Command activity is the Lambda function that serves the reads of recorded
// traffic (GET /api/activity, GET /api/sessions, GET /api/events/{id} and
// GET /api/export) and the team alerts (GET/POST/DELETE /api/alerts/rules,
// DELETE /api/alerts/rules/{id}, GET /api/alerts)
// behind an API Gateway HTTP API (payload 2.0). Configuration, the store
// and the handler are wired by lambdafn.API (see docs/api.md). Build it as
// bootstrap for provided.al2023:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./functions/activity
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kilometers-ai/kilometers/shared/httpapi"
	"github.com/kilometers-ai/kilometers/shared/lambdahttp/lambdafn"
)

func main() {
	lambda.Start(lambdafn.API(os.Getenv, httpapi.Activity|httpapi.Export|httpapi.Alerts))
}
