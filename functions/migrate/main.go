// Command migrate is the Lambda function that applies the database
// migrations: CloudFormation calls it as a custom resource on every deploy
// (the answer goes to the ResponseURL), and operators may invoke it directly
// (aws lambda invoke --function-name <name> out.json). Build it as
// bootstrap for provided.al2023:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./functions/migrate
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kilometers-ai/kilometers/shared/lambdahttp/lambdafn"
)

func main() {
	lambda.Start(lambdafn.Migrate(os.Getenv))
}
