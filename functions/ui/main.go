// Command ui is the Lambda function that serves the dashboard's page (GET /
// and its files; package webui) behind the same API Gateway HTTP API as the
// API it reads, so that page and API share one origin. It reads no
// database and no secret. Build it as bootstrap for provided.al2023:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./functions/ui
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kilometers-ai/kilometers/shared/lambdahttp"
	"github.com/kilometers-ai/kilometers/shared/webui"
)

func main() {
	lambda.Start(lambdahttp.Handler(webui.Handler()))
}
