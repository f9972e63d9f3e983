// Package functions holds no code: each subdirectory is one Lambda
// function (ingest, activity, stats, admin, migrate, maintenance) plus
// local, which serves every route on one port. The tests here build every function as
// Lambda runs it and drive the built bootstrap binaries through a Lambda
// Runtime API harness (package runtimetest).
package functions
