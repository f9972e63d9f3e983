// Command alerts is the Lambda function an EventBridge schedule invokes
// every minute to run the team alerts: window rules (failure rate, p95
// latency) evaluated for every tenant, then the webhook deliveries that
// are due, with their retries (docs/alerts.md). Per-event rules fire in
// the ingest function itself. It serves no route; POST
// /api/admin/alerts/evaluate runs the same job on demand. Build it as
// bootstrap for provided.al2023:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./functions/alerts
package main

import (
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kilometers-ai/kilometers/shared/lambdahttp/lambdafn"
)

func main() {
	lambda.Start(lambdafn.Alerts(os.Getenv, time.Now))
}
