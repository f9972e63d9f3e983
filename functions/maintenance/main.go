// Command maintenance is the Lambda function an EventBridge schedule
// invokes to run the maintenance job: time partitions made ahead, those
// past every tenant's retention dropped (docs/deploy.md, "Data
// lifecycle"). It serves no route; POST /api/admin/maintenance runs the
// same job on demand. Build it as bootstrap for provided.al2023:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./functions/maintenance
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/kilometers-ai/kilometers/shared/lambdahttp/lambdafn"
)

func main() {
	lambda.Start(lambdafn.Maintenance(os.Getenv))
}
