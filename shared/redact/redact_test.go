package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
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

func BenchmarkJSONLarge(b *testing.B) { benchJSON(b, JSON, largePayload()) }

// BenchmarkJSONLargeManySecrets is the worst realistic case: a large result
// that is mostly secrets and secret-looking words (a dumped .env or a
// credentials file), so every pattern matches many times.
func BenchmarkJSONLargeManySecrets(b *testing.B) { benchJSON(b, JSON, manySecretsPayload(b)) }

func BenchmarkJSONToolsCallRequest(b *testing.B) { benchJSON(b, JSON, toolsCallRequest()) }
func BenchmarkJSONToolsCallResult(b *testing.B)  { benchJSON(b, JSON, toolsCallResult()) }
func BenchmarkJSONToolsList(b *testing.B)        { benchJSON(b, JSON, []byte(toolsListResult)) }

// BenchmarkJSONFetchWithAuthorization is the rare case of a small payload
// that does hold secrets.
func BenchmarkJSONFetchWithAuthorization(b *testing.B) { benchJSON(b, JSON, []byte(fetchRequest)) }

// The same payloads through the implementation JSON replaced.
func BenchmarkJSONReferenceLarge(b *testing.B) { benchJSON(b, jsonReference, largePayload()) }
func BenchmarkJSONReferenceLargeManySecrets(b *testing.B) {
	benchJSON(b, jsonReference, manySecretsPayload(b))
}
func BenchmarkJSONReferenceToolsCallRequest(b *testing.B) {
	benchJSON(b, jsonReference, toolsCallRequest())
}
func BenchmarkJSONReferenceToolsCallResult(b *testing.B) {
	benchJSON(b, jsonReference, toolsCallResult())
}
func BenchmarkJSONReferenceToolsList(b *testing.B) {
	benchJSON(b, jsonReference, []byte(toolsListResult))
}

func BenchmarkJSONReferenceFetchWithAuthorization(b *testing.B) {
	benchJSON(b, jsonReference, []byte(fetchRequest))
}

func benchJSON(b *testing.B, redact func([]byte) ([]byte, bool, error), in []byte) {
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, _, err := redact(in); err != nil {
			b.Fatal(err)
		}
	}
}

func largePayload() []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("abcdefgh ", 100<<10/9) + `"}]}}`)
}

func manySecretsPayload(b *testing.B) []byte {
	line := "API_TOKEN=" + ghToken + " password: hunter2 Authorization: Bearer " + kmKey + " https://u:p@h/ " + jwt + "\n"
	in, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "result": map[string]any{"content": []any{map[string]any{"type": "text", "text": strings.Repeat(line, 1<<20/len(line))}}}})
	if err != nil {
		b.Fatal(err)
	}
	return in
}

// toolsCallRequest and toolsCallResult are the most common MCP messages,
// padded to 256 bytes.
func toolsCallRequest() []byte {
	return padded(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"`, `"}}}`, 256)
}
func toolsCallResult() []byte {
	return padded(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"`, `"}],"isError":false}}`, 256)
}

func padded(head, tail string, size int) []byte {
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

const fetchRequest = `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"fetch","arguments":{"url":"https://api.example.com/v1/items?page=2","headers":{"Authorization":"Bearer abcdef0123456789xyz","X-Api-Key":"k-123-456-789","Accept":"application/json"}}}}`

// toolsListResult is a tools/list result of about 2 KB as MCP servers
// built on the TypeScript SDK send it, $schema URLs included.
const toolsListResult = `{"jsonrpc":"2.0","id":1,"result":{"tools":[` +
	`{"name":"read_file","description":"Read the complete contents of a file from the file system. Handles various text encodings and provides detailed error messages if the file cannot be read. Only works within allowed directories.","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}},` +
	`{"name":"write_file","description":"Create a new file or completely overwrite an existing file with new content.\nUse with caution as it will overwrite existing files without warning.","inputSchema":{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}},` +
	`{"name":"list_directory","description":"Get a detailed listing of all files and directories in a specified path. Results distinguish between files and directories with [FILE] and [DIR] prefixes.","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}},` +
	`{"name":"search_files","description":"Recursively search for files and directories matching a pattern. Searches through all subdirectories from the starting path.","inputSchema":{"type":"object","properties":{"path":{"type":"string"},"pattern":{"type":"string"},"excludePatterns":{"type":"array","items":{"type":"string"},"default":[]}},"required":["path","pattern"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}},` +
	`{"name":"fetch","description":"Fetches a URL from the internet and optionally extracts its contents as markdown.","inputSchema":{"type":"object","properties":{"url":{"type":"string","format":"uri","description":"URL to fetch"},"max_length":{"type":"integer","default":5000,"exclusiveMinimum":0,"exclusiveMaximum":1000000,"description":"Maximum number of characters to return."},"start_index":{"type":"integer","default":0,"minimum":0},"raw":{"type":"boolean","default":false}},"required":["url"],"additionalProperties":false,"$schema":"http://json-schema.org/draft-07/schema#"}}` +
	`]}}`

// jsonReference is JSON as it was before the byte scanner replaced it:
// encoding/json's Decoder token by token, every string re-encoded. JSON
// must give exactly its results, which the tests below compare.
func jsonReference(raw []byte) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var buf bytes.Buffer
	buf.Grow(len(raw))
	w := &referenceWriter{dec: dec, buf: &buf}
	if err := w.value(false); err != nil {
		return nil, false, fmt.Errorf("redact: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, fmt.Errorf("redact: trailing data after JSON value")
	}
	if !w.changed {
		return raw, false, nil
	}
	return buf.Bytes(), true, nil
}

type referenceWriter struct {
	dec     *json.Decoder
	buf     *bytes.Buffer
	changed bool
	enc     *json.Encoder
	scratch bytes.Buffer
}

func (w *referenceWriter) value(secret bool) error {
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return w.object()
		case '[':
			return w.array(secret)
		}
		return fmt.Errorf("unexpected %v", t)
	case string:
		if secret && t != "" {
			w.changed = true
			w.str(Marker)
			return nil
		}
		s, changed := redactStringReference(t)
		w.changed = w.changed || changed
		w.str(s)
	case json.Number:
		if secret {
			w.changed = true
			w.str(Marker)
			return nil
		}
		w.buf.WriteString(t.String())
	case bool:
		if t {
			w.buf.WriteString("true")
		} else {
			w.buf.WriteString("false")
		}
	case nil:
		w.buf.WriteString("null")
	}
	return nil
}

func (w *referenceWriter) object() error {
	w.buf.WriteByte('{')
	for i := 0; w.dec.More(); i++ {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		k, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key is not a string")
		}
		if i > 0 {
			w.buf.WriteByte(',')
		}
		w.str(k)
		w.buf.WriteByte(':')
		if err := w.value(sensitiveKeyReference(k)); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // '}'
		return err
	}
	w.buf.WriteByte('}')
	return nil
}

func (w *referenceWriter) array(secret bool) error {
	w.buf.WriteByte('[')
	for i := 0; w.dec.More(); i++ {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.value(secret); err != nil {
			return err
		}
	}
	if _, err := w.dec.Token(); err != nil { // ']'
		return err
	}
	w.buf.WriteByte(']')
	return nil
}

func (w *referenceWriter) str(s string) {
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.scratch)
		w.enc.SetEscapeHTML(false)
	}
	w.scratch.Reset()
	_ = w.enc.Encode(s) // a string always encodes
	w.buf.Write(bytes.TrimSuffix(w.scratch.Bytes(), []byte{'\n'}))
}

// redactStringReference is redactString as it was: a lower-cased copy of
// every text, and strings.Contains per needle.
func redactStringReference(s string) (string, bool) {
	changed := false
	lower := strings.ToLower(s)
	pats := patterns()
	for i := range pats {
		p := &pats[i]
		if !mayMatchReference(p, s, lower) || !p.re.MatchString(s) {
			continue
		}
		if p.group == 0 {
			s = p.re.ReplaceAllLiteralString(s, Marker)
			changed = true
			continue
		}
		var b strings.Builder
		last := 0
		for _, m := range p.re.FindAllStringSubmatchIndex(s, -1) {
			start, end := m[2*p.group], m[2*p.group+1]
			if start < 0 || s[start:end] == Marker {
				continue
			}
			b.WriteString(s[last:start])
			b.WriteString(Marker)
			last = end
			changed = true
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return s, changed
}

func mayMatchReference(p *pattern, s, lower string) bool {
	t := s
	if p.fold {
		t = lower
	}
	for _, n := range p.needles {
		if strings.Contains(t, n) {
			return true
		}
	}
	return false
}

// sensitiveKeyReference is SensitiveKey as it was.
func sensitiveKeyReference(k string) bool {
	n := normalizeReference(k)
	if n == "" || notSensitive[n] {
		return false
	}
	for _, s := range sensitiveSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

func normalizeReference(k string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(k) {
		switch r {
		case '-', '_', '.', ' ':
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkJSONMatchesReference fails t unless JSON and jsonReference agree on
// in: error or not, changed, output bytes, and an unchanged input comes
// back as the very same slice.
func checkJSONMatchesReference(t *testing.T, in []byte) {
	t.Helper()
	got, gotChanged, gotErr := JSON(in)
	want, wantChanged, wantErr := jsonReference(in)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("JSON(%q): error %v, reference error %v", in, gotErr, wantErr)
	}
	if gotErr != nil {
		if got != nil || gotChanged {
			t.Fatalf("JSON(%q) = %q, %v with error %v", in, got, gotChanged, gotErr)
		}
		return
	}
	if gotChanged != wantChanged || !bytes.Equal(got, want) {
		t.Fatalf("JSON(%q)\n got %v %q\nwant %v %q", in, gotChanged, got, wantChanged, want)
	}
	if !gotChanged && (len(got) != len(in) || len(in) > 0 && &got[0] != &in[0]) {
		t.Fatalf("JSON(%q) unchanged but not returned as is", in)
	}
}

// trickyJSON are inputs where a byte scanner could easily part from
// encoding/json: each is a case of the rules JSON documents or of what
// decoding and re-encoding does to strings.
var trickyJSON = []string{
	// Escapes in keys: the decoded key decides.
	`{"pass\u0077ord":"hunter2"}`,
	`{"\u0070assword":1,"a":"b"}`,
	`{"pass\"word":"x"}`,
	`{"a\"b":"c","d\\e":"f"}`,
	`{"api\u005fkey":"x"}`,
	`{"progress\u0054oken":"x","progressToken":7}`,
	`{"x\/token":"y"}`,
	// Secrets split by escapes, or needles made by them.
	`{"t":"Bearer abc\u0064efghijklmnop"}`,
	`{"t":"\u0042earer abcdefghijklmnop"}`,
	`{"t":"to\u006ben=abcdef"}`,
	`{"t":"tok\nen=abcdef"}`,
	`{"t":"gh\u0070_1234567890abcdefghijABCDEFGHIJklmnop"}`,
	`{"t":"https:\/\/user:pa55word@example.com\/"}`,
	`{"t":"https:\/\/example.com\/"}`,
	`{"t":"\npm_abcdefghijklmnopqrstuvwxyz0123456789"}`,
	`{"t":"a\tpassword=hunter2\tb"}`,
	`{"t":"sk\u002dabcdefghijklmnopqrstuvwxyz012345"}`,
	`{"t":"\u003ca href=\u0022https://u:p@h/\u0022\u003e"}`,
	`{"t":"\"Bearer\" abcdefghijklmnop"}`,
	// Invalid UTF-8, alone and in a document that changes.
	"{\"a\":\"\xff token=abcdef\"}",
	"{\"a\":\"\xff\xfe plain\"}",
	"{\"pass\xffword\":\"x\"}",
	"{\"password\xff\":\"x\"}",
	"{\"password\":\"x\",\"b\":\"\xff\xfe\xc3\",\"\xe2\x84\":1}",
	"{\"token\":\"\xed\xa0\x80\"}",
	"\"\xc3\xa9\xa9 Bearer abcdefghijkl\"",
	// Runes outside ASCII that lower to needle bytes, and ones that do not.
	"{\"t\":\"TO\u212aEN=abcdef\"}",
	"{\"to\u212aen\":\"x\"}",
	`{"to\u212aen":"x"}`,
	"{\"t\":\"d\u0130gest abcdefghijkl\"}",
	"{\"t\":\"\u017fecret=abcdef\"}",
	"{\"s\u0130gnature\":\"x\"}",
	"{\"\u00e9token\":\"x\"}",
	// The folded needles are looked for in the text as it came in: once the
	// ghp_ token is gone, "secret" is still found and (?i) matches ſecret.
	"{\"t\":\"ghp_secret1234567890abcdefghijABCDEFGHIJ \u017fecret=xyz\"}",
	// Arrays under a secret key, deep ones too.
	`{"token":[[[["a",1,true,null,"",{"k":"v","password":"p"}]]]]}`,
	`{"token":[` + strings.Repeat(`[`, 20000) + `"x"` + strings.Repeat(`]`, 20000) + `]}`,
	`{"a":` + strings.Repeat(`[`, 20000) + `"x"` + strings.Repeat(`]`, 20000) + `}`,
	strings.Repeat(`{"a":`, 5000) + `"Bearer abcdefghijkl"` + strings.Repeat(`}`, 5000),
	`{"token":[1,"b",[2,"c"],{"d":"e"},"f"],"g":"h"}`,
	// Numbers, empty strings, null and booleans under secret keys.
	`{"password":-1.5e10,"token":0,"secret":1E+2,"auth":0.000}`,
	`{"a":{"password":12345678901234567890123456789},"b":1e999999}`,
	`{"password":""}`,
	`{"password":["",""]}`,
	`{"password":null,"token":true,"secret":false}`,
	`{"password":{}}`,
	`{"password":[]}`,
	`{"password":{"a":"b","token":"c"}}`,
	`{"password":"[REDACTED]"}`,
	`{"u":"https://a:[REDACTED]@h/"}`,
	// Duplicate keys.
	`{"a":1,"a":2,"token":"x","token":"y"}`,
	`{"token":"","token":""}`,
	// Whitespace everywhere.
	" \t\n\r{ \"a\" : [ 1 , \"token=abcdef\" , { } , [ ] ] , \"password\" : \"x\" } \r\n\t ",
	" \t\n{ \"a\" : [ 1 , \"plain\" , { } , [ ] ] } \n",
	// What re-encoding does to strings that did not change.
	`{"password":"x","h":"<a href='x'>&amp;</a>"}`,
	`{"password":"x","c":"\u0001\b\f\n\r\t\u007f\u001f\/"}`,
	"{\"password\":\"x\",\"c\":\"\x7f\u2028\u2029\u2027\"}",
	`{"password":"x","c":"\u2028\u2029"}`,
	`{"password":"x","s":"\ud83d\ude00 \ud800 \udc00 \ud800\u0041 \ud800\ud800\udc00 \udbff\udfff \ud800\\"}`,
	`{"password":"x","s":"\uD83D\uDE00\uFFFD\u0000"}`,
	`{"password":"x","k\u00e9y\u2028":"v"}`,
	// Keys longer than what SensitiveKey keeps.
	`{"my_very_long_prefix_for_a_password":"x","_-._-._-.-_-._-._-. token":"y"}`,
	`{"xxxxxxxxxxxxxxxxxxxxprogresstoken":"x","progress_token":"y","PROGRESS-TOKEN":"z","next.page.token":"w"}`,
	`{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":"x","":"y","-":"z"}`,
	// Trailing garbage and several top-level values.
	`{"a":1} x`,
	`{"a":1},`,
	`{"a":1}]`,
	`{"a":1}}`,
	`{"password":"x"}garbage`,
	`{"a":1}{"b":2}`,
	`1 2`,
	`"a" "b"`,
	`[] []`,
	`1x`,
	`truex`,
	`nulll`,
	`"a"1`,
	"1\x00",
	// Values at the top other than objects.
	`"Bearer abcdefghijklmnop"`,
	`"plain"`,
	`123`,
	` 42 `,
	`-0.5e-3`,
	`true`,
	`false`,
	`null`,
	`[]`,
	`{}`,
	`["token=abcdef"]`,
	`[1,"x",null]`,
	// Not JSON.
	``,
	` `,
	`{`,
	`[`,
	`"`,
	`{"a"}`,
	`{"a":}`,
	`{"a" 1}`,
	`{"a"::1}`,
	`{,}`,
	`{"a":1,}`,
	`{"a":1 "b":2}`,
	`[1,]`,
	`[,1]`,
	`[1 2]`,
	`[}`,
	`{]`,
	`{1:2}`,
	`{{}:1}`,
	`[01]`,
	`-`,
	`-a`,
	`1.`,
	`.5`,
	`1e`,
	`1e+`,
	`+1`,
	`tru`,
	`nul`,
	`NaN`,
	"\"\x01\"",
	"\"\t\"",
	`"\u12"`,
	`"\u12g4"`,
	`"\q"`,
	`"\'"`,
	`"abc`,
	`"abc\`,
	`{"password":"x"`,
	"\xef\xbb\xbf{}",
	"\x00",
}

func TestJSONMatchesReference(t *testing.T) {
	in := append([]string{}, trickyJSON...)
	in = append(in, string(toolsCallRequest()), string(toolsCallResult()), toolsListResult, fetchRequest)
	for _, s := range in {
		name := s
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) { checkJSONMatchesReference(t, []byte(s)) })
	}
}

// fuzzSeeds are the tricky inputs small enough to seed a fuzzer: the
// fuzzer minimizes every input that finds new code, one byte at a time, and
// stalls for many seconds on the deeply nested ones.
func fuzzSeeds() []string {
	var seeds []string
	for _, s := range trickyJSON {
		if len(s) <= 4096 {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

func FuzzJSONMatchesReference(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte(toolsListResult))
	f.Add([]byte(`{"a":"Bearer abcdefghijkl","password":1}`))
	f.Add([]byte(`{"env":{"GITHUB_TOKEN":"` + ghToken + `","x":"` + awsKey + ` ` + jwt + ` ` + pemKey + `"}}`))
	f.Add([]byte(`{"c":"curl -H 'X-Api-Key: abcd1234efgh' -u admin:hunter2 https://svc.local/ && mysql --password=p4ssw0rd db"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkJSONMatchesReference(t, in)
	})
}

// FuzzStringMatchesReference compares String and SensitiveKey, which also
// run on command lines, with what they were.
func FuzzStringMatchesReference(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	for _, s := range []string{"DATABASE_URL=postgres://app:s3cretpw@db/app", "Authorization: Bearer " + kmKey, pemKey, "x-api-key", "progressToken", "ghp_secret1234567890abcdefghijABCDEFGHIJ \u017fecret=xyz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, gotChanged := redactString(in)
		want, wantChanged := redactStringReference(in)
		if got != want || gotChanged != wantChanged {
			t.Fatalf("redactString(%q)\n got %v %q\nwant %v %q", in, gotChanged, got, wantChanged, want)
		}
		if got, want := SensitiveKey(in), sensitiveKeyReference(in); got != want {
			t.Fatalf("SensitiveKey(%q) = %v, reference %v", in, got, want)
		}
		checkNeedleMask(t, in)
	})
}

// checkNeedleMask compares needleMask, on the text as a string and as
// bytes, with looking for every needle the way redactString used to.
func checkNeedleMask(t *testing.T, s string) {
	t.Helper()
	lower := strings.ToLower(s)
	var want uint64
	for i := range patterns() {
		if mayMatchReference(&patterns()[i], s, lower) {
			want |= 1 << i
		}
	}
	if got := needleMask(needles(), s); got != want {
		t.Fatalf("needleMask(%q) = %b, want %b", s, got, want)
	}
	if got := needleMask(needles(), []byte(s)); got != want {
		t.Fatalf("needleMask([]byte(%q)) = %b, want %b", s, got, want)
	}
}

func TestStringMatchesReference(t *testing.T) {
	for _, s := range append(append([]string{}, trickyJSON...), "TOKEN=abcdef", "K", "\u212a", "to\u212a", "p\u0130", "Digest abcdefgh", "d\u0130GEST abcdefghij") {
		got, gotChanged := redactString(s)
		want, wantChanged := redactStringReference(s)
		if got != want || gotChanged != wantChanged {
			t.Errorf("redactString(%q)\n got %v %q\nwant %v %q", s, gotChanged, got, wantChanged, want)
		}
		if got, want := SensitiveKey(s), sensitiveKeyReference(s); got != want {
			t.Errorf("SensitiveKey(%q) = %v, reference %v", s, got, want)
		}
		checkNeedleMask(t, s)
	}
}

// TestNeedleMaskEveryOffset puts every needle, in every spelling the
// folding allows, at odd and even offsets and at both ends of a text.
func TestNeedleMaskEveryOffset(t *testing.T) {
	for _, p := range patterns() {
		for _, n := range p.needles {
			spelled := []string{n}
			if p.fold {
				// Also with the runes outside ASCII that lower to k and i.
				spelled = append(spelled, strings.ToUpper(n),
					strings.NewReplacer("k", "\u212a", "i", "\u0130").Replace(n))
			}
			for _, sp := range spelled {
				for pad := range 4 {
					for _, s := range []string{sp, strings.Repeat("x", pad) + sp, sp + strings.Repeat("x", pad), strings.Repeat("é", pad) + sp + "y"} {
						checkNeedleMask(t, s)
						if needleMask(needles(), s) == 0 {
							t.Errorf("needle %q not found in %q", n, s)
						}
					}
				}
			}
		}
	}
}

// TestNonASCIILower checks nonASCIILower against the Unicode tables: the
// needle index would miss a folded needle spelled with a rune it does not
// know.
func TestNonASCIILower(t *testing.T) {
	found := map[byte]string{}
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if l := unicode.ToLower(r); l < utf8.RuneSelf {
			if found[byte(l)] != "" {
				t.Errorf("both %q and %q lower to %q", found[byte(l)], r, l)
			}
			found[byte(l)] = string(r)
		}
	}
	for c := range byte(utf8.RuneSelf) {
		if got := nonASCIILower(c); got != found[c] {
			t.Errorf("nonASCIILower(%q) = %q, Unicode says %q", c, got, found[c])
		}
	}
}

func TestKeyTailIsLongEnough(t *testing.T) {
	for _, s := range sensitiveSuffixes {
		if len(s) > keyTail {
			t.Errorf("suffix %q is longer than keyTail %d", s, keyTail)
		}
	}
	for k := range notSensitive {
		if len(k) >= keyTail {
			t.Errorf("notSensitive key %q is not shorter than keyTail %d", k, keyTail)
		}
	}
}

// TestJSONDoesNotAllocate keeps the common case cheap: a payload with
// nothing to redact is scanned and returned as it is.
func TestJSONDoesNotAllocate(t *testing.T) {
	for name, in := range map[string][]byte{
		"tools/call request": toolsCallRequest(),
		"tools/call result":  toolsCallResult(),
		"tools/list result":  []byte(toolsListResult),
		"initialize":         []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"claude-desktop","version":"0.10.1"}}}`),
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, changed, err := JSON(in); err != nil || changed {
				t.Fatalf("%s: changed %v, error %v", name, changed, err)
			}
		})
		if allocs != 0 && !raceEnabled {
			t.Errorf("%s: %v allocations per call, want 0", name, allocs)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { SensitiveKey("Authorization") }); allocs != 0 {
		t.Errorf("SensitiveKey: %v allocations per call, want 0", allocs)
	}
}
