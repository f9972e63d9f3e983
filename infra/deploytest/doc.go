// Package deploytest runs infra/deploy.sh with stand-ins for the sam and aws
// commands (no AWS account is reachable from CI) and checks what it asks
// them to do, and that a failed build, deploy or smoke test fails it. The
// smoke test itself runs for real, against the real API handlers over
// PostgreSQL.
package deploytest
