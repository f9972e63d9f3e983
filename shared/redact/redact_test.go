package redact

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Fake secrets in the formats the patterns know. They are built from parts
// so that secret scanners do not flag this file.
var (
	awsKey    = "AKIA" + "IOSFODNN7EXAMPLE"
	awsSecret = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
	ghToken   = "ghp_" + "1234567890abcdefghijABCDEFGHIJklmnop"
	ghsToken  = "ghs_" + "abcdefghijABCDEFGHIJ0123456789xyzw"
	slackTok  = "xoxb-" + "123456789012-abcdefghijkl"
	stripeKey = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
	googleKey = "AIza" + "SyA1234567890abcdefghijklmnopqrstuv"
	openAIKey = "sk-proj-" + "abcdefghijklmnopqrstuvwxyz012345"
	antKey    = "sk-ant-" + "api03-abcdefghijklmnopqrstuvwxyz"
	jwt       = "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0." + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	kmKey     = "km_" + "live_0123456789abcdefghij"
	pemKey    = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq0example\nAbCdEf0123456789\n-----END RSA PRIVATE KEY-----"
)

func TestJSONTable(t *testing.T) {
	mustJSON := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name      string
		in        string
		gone      []string // must not appear in the output
		kept      []string // must still appear
		unchanged bool     // output is byte-identical to input
	}{
		{
			name:      "initialize is untouched",
			in:        `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"claude-desktop","version":"0.10.1"}}}`,
			unchanged: true,
		},
		{
			name:      "tool list with progress token and token counts is untouched",
			in:        `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"summarize","arguments":{"max_tokens":500,"text":"the token count is 12"},"_meta":{"progressToken":7}}}`,
			unchanged: true,
		},
		{
			name: ".env file read through a filesystem server",
			in: mustJSON(map[string]any{"jsonrpc": "2.0", "id": 17, "result": map[string]any{"content": []any{map[string]any{"type": "text",
				"text": "DATABASE_URL=postgres://app:s3cretpw@db.internal:5432/app\nAWS_ACCESS_KEY_ID=" + awsKey +
					"\nAWS_SECRET_ACCESS_KEY=" + awsSecret + "\nSTRIPE_KEY=" + stripeKey + "\nPORT=8080\nexport GITHUB_TOKEN='" + ghToken + "'\n"}}}}),
			gone: []string{"s3cretpw", awsKey, awsSecret, stripeKey, ghToken},
			kept: []string{"DATABASE_URL=postgres://app:", "@db.internal:5432/app", "PORT=8080", "AWS_SECRET_ACCESS_KEY=" + Marker},
		},
		{
			name: "fetch with an Authorization header and api key header",
			in:   `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"fetch","arguments":{"url":"https://api.example.com/v1/items?page=2","headers":{"Authorization":"Bearer abcdef0123456789xyz","X-Api-Key":"k-123-456-789","Accept":"application/json"}}}}`,
			gone: []string{"abcdef0123456789xyz", "k-123-456-789"},
			kept: []string{"https://api.example.com/v1/items?page=2", "application/json", `"Authorization":"[REDACTED]"`},
		},
		{
			name: "private key file content",
			in:   mustJSON(map[string]any{"jsonrpc": "2.0", "id": 5, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": "key:\n" + pemKey + "\nend"}}}}),
			gone: []string{"MIIEowIBAAKCAQEA7bq0example", "AbCdEf0123456789"},
			kept: []string{"key:\\n", "\\nend"},
		},
		{
			name: "git remote with a token in the URL",
			in:   mustJSON(map[string]any{"jsonrpc": "2.0", "id": 6, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": "origin\thttps://x-access-token:" + ghsToken + "@github.com/acme/app.git (fetch)"}}}}),
			gone: []string{ghsToken},
			kept: []string{"github.com/acme/app.git", "origin"},
		},
		{
			name: "secret-named keys with numbers, nested objects and arrays",
			in:   `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"login","arguments":{"username":"ada","password":123456,"client_secret":"cs-abc","credentials":{"type":"basic","pass":"x"},"tokens":["not","secret"],"access_token":["t1","t2"],"session":{"refreshToken":"rt-1"}}}}`,
			gone: []string{"123456", "cs-abc", `"t1"`, `"t2"`, "rt-1"},
			kept: []string{`"username":"ada"`, `"tokens":["not","secret"]`, `"type":"basic"`},
		},
		{
			name: "well-known token formats in free text",
			in:   mustJSON(map[string]any{"jsonrpc": "2.0", "method": "notifications/message", "params": map[string]any{"level": "info", "data": "slack " + slackTok + " google " + googleKey + " openai " + openAIKey + " anthropic " + antKey + " jwt " + jwt + " km " + kmKey}}),
			gone: []string{slackTok, googleKey, openAIKey, antKey, jwt, kmKey},
			kept: []string{"slack ", " google ", " anthropic ", "notifications/message"},
		},
		{
			name: "shell tool running curl with a key",
			in:   `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"run_command","arguments":{"command":"curl -H 'X-Api-Key: abcd1234efgh' -u admin:hunter2hunter2 https://svc.local/ && mysql --password=p4ssw0rd db"}}}`,
			gone: []string{"abcd1234efgh", "p4ssw0rd"},
			kept: []string{"curl -H", "https://svc.local/", "mysql --password=" + Marker, "run_command"},
		},
		{
			name: "invalid line (payload is a JSON string)",
			in:   mustJSON("Authorization: Bearer zzzzzzzzzzzzzzzzzzzz and not json"),
			gone: []string{"zzzzzzzzzzzzzzzzzzzz"},
			kept: []string{"and not json"},
		},
		{
			name: "tool call arguments with an env block (MCP server launcher)",
			in: mustJSON(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": map[string]any{"name": "start_server",
				"arguments": map[string]any{"command": "npx", "args": []any{"-y", "@modelcontextprotocol/server-github"},
					"env": map[string]any{"GITHUB_PERSONAL_ACCESS_TOKEN": ghToken, "DATABASE_URL": "postgres://app:s3cretpw@db:5432/app",
						"OPENAI_API_KEY": openAIKey, "ANTHROPIC_API_KEY": antKey, "SLACK_BOT_TOKEN": slackTok, "LOG_LEVEL": "debug", "AWS_REGION": "eu-west-1"}}}}),
			gone: []string{ghToken, "s3cretpw", openAIKey, antKey, slackTok},
			kept: []string{`"LOG_LEVEL":"debug"`, `"AWS_REGION":"eu-west-1"`, "@modelcontextprotocol/server-github", "postgres://app:", "@db:5432/app"},
		},
		{
			name: "docker run with -e secrets and a config file with tokens",
			in: mustJSON(map[string]any{"jsonrpc": "2.0", "id": 10, "result": map[string]any{"content": []any{
				map[string]any{"type": "text", "text": "docker run -e AWS_ACCESS_KEY_ID=" + awsKey + " -e AWS_SECRET_ACCESS_KEY=" + awsSecret + " -e STRIPE_SECRET=" + stripeKey + " app:latest"},
				map[string]any{"type": "text", "text": "//registry.npmjs.org/:_authToken=npm_" + "abcdefghijklmnopqrstuvwxyz0123456789\nalways-auth=true"},
				map[string]any{"type": "text", "text": "users:\n- name: admin\n  user:\n    token: " + jwt + "\n    client-key-data: LS0tLS1CRUdJTi" + "BSU0EgUFJJVkFURSBLRVktLS0tLQ=="},
			}}}),
			gone: []string{awsKey, awsSecret, stripeKey, "abcdefghijklmnopqrstuvwxyz0123456789", jwt},
			kept: []string{"docker run -e AWS_ACCESS_KEY_ID=", "app:latest", "always-auth=true", "name: admin"},
		},
		{
			name: "HTTP request and response headers from a fetch tool",
			in: mustJSON(map[string]any{"jsonrpc": "2.0", "id": 11, "result": map[string]any{"structuredContent": map[string]any{
				"request":  map[string]any{"headers": map[string]any{"Authorization": "Basic " + "YWRtaW46aHVudGVyMg==", "Cookie": "session=" + jwt, "User-Agent": "mcp-fetch/1.0"}},
				"response": map[string]any{"status": 200, "headers": map[string]any{"Set-Cookie": "sid=abc123def456; HttpOnly", "Content-Type": "text/html"}},
				"body":     "<a href=\"https://user:pa55word@intranet.example/x\">link</a> " + "Authorization: Bearer " + kmKey,
			}}}),
			gone: []string{"YWRtaW46aHVudGVyMg==", jwt, "abc123def456", "pa55word", kmKey},
			kept: []string{`"User-Agent":"mcp-fetch/1.0"`, `"Content-Type":"text/html"`, `"status":200`, "intranet.example/x", "link</a>"},
		},
		{
			name: "PEM blocks of several kinds inside a file listing",
			in: mustJSON(map[string]any{"jsonrpc": "2.0", "id": 12, "result": map[string]any{"content": []any{map[string]any{"type": "text",
				"text": "== id_ed25519 ==\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n== key.pem ==\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA\n-----END EC PRIVATE KEY-----\n== cert.pem ==\n-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"}}}}),
			gone: []string{"b3BlbnNzaC1rZXktdjEAAAAA", "MHcCAQEEIIrYSSNQFaA"},
			kept: []string{"== id_ed25519 ==", "== cert.pem ==", "MIIBszCCAVmgAwIBAgIU"}, // a certificate is public
		},
		{
			name:      "error response is untouched",
			in:        `{"jsonrpc":"2.0","id":17,"error":{"code":-32602,"message":"Invalid params: path must be absolute"}}`,
			unchanged: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, changed, err := JSON([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON: %s", out)
			}
			if c.unchanged {
				if changed || string(out) != c.in {
					t.Fatalf("changed:\n in: %s\nout: %s", c.in, out)
				}
				return
			}
			if !changed {
				t.Errorf("changed = false")
			}
			for _, s := range c.gone {
				if strings.Contains(string(out), s) {
					t.Errorf("output still contains %q:\n%s", s, out)
				}
			}
			for _, s := range c.kept {
				if !strings.Contains(string(out), s) {
					t.Errorf("output lost %q:\n%s", s, out)
				}
			}
			// Order of keys is kept: the first key of the input comes first.
			if strings.HasPrefix(c.in, `{"jsonrpc"`) && !strings.HasPrefix(string(out), `{"jsonrpc"`) {
				t.Errorf("key order changed: %s", out)
			}
		})
	}
}

func TestJSONInvalid(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1}{"b":2}`, `[1,2`} {
		if _, _, err := JSON([]byte(in)); err == nil {
			t.Errorf("JSON(%q) succeeded", in)
		}
	}
}

func TestArgs(t *testing.T) {
	in := []string{"npx", "-y", "@acme/mcp-server", "--token=" + ghToken, "--api-key", "abc123", "API_KEY=xyz789",
		"--password", "--verbose", "--dir", "/home/u/project", "postgres://u:pw1234@localhost/db", "OPENAI_API_KEY=" + openAIKey}
	want := []string{"npx", "-y", "@acme/mcp-server", "--token=" + Marker, "--api-key", Marker, "API_KEY=" + Marker,
		"--password", "--verbose", "--dir", "/home/u/project", "postgres://u:" + Marker + "@localhost/db", "OPENAI_API_KEY=" + Marker}
	if got := Args(in); !reflect.DeepEqual(got, want) {
		t.Errorf("Args:\n got %q\nwant %q", got, want)
	}
	if Args(nil) != nil {
		t.Errorf("Args(nil) != nil")
	}
}

func TestSensitiveKey(t *testing.T) {
	for k, want := range map[string]bool{
		"password": true, "Authorization": true, "x-api-key": true, "AWS_SECRET_ACCESS_KEY": true,
		"githubToken": true, "private_key": true, "Set-Cookie": true,
		"progressToken": false, "tokens": false, "max_tokens": false, "name": false, "path": false, "author": false, "PWD": false,
	} {
		if got := SensitiveKey(k); got != want {
			t.Errorf("SensitiveKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func FuzzJSON(f *testing.F) {
	f.Add(`{"a":"Bearer abcdefghijkl","password":1}`)
	f.Add(`["x", {"token": null}]`)
	f.Fuzz(func(t *testing.T, in string) {
		out, _, err := JSON([]byte(in))
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("JSON(%q) = %q, not valid JSON", in, out)
		}
	})
}

func BenchmarkJSONLarge(b *testing.B) {
	in := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("abcdefgh ", 100<<10/9) + `"}]}}`)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, _, err := JSON(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONLargeManySecrets is the worst realistic case: a large result
// that is mostly secrets and secret-looking words (a dumped .env or a
// credentials file), so every pattern matches many times.
func BenchmarkJSONLargeManySecrets(b *testing.B) {
	line := "API_TOKEN=" + ghToken + " password: hunter2 Authorization: Bearer " + kmKey + " https://u:p@h/ " + jwt + "\n"
	in, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": strings.Repeat(line, 1<<20/len(line))}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, _, err := JSON(in); err != nil {
			b.Fatal(err)
		}
	}
}
