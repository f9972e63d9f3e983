package templatetest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLoadReadsShortFormIntrinsics(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.yaml")
	src := `Resources:
  Fn:
    Type: AWS::Serverless::Function
    DependsOn: [A, B]
    Properties:
      Role: !GetAtt Role.Arn
      Secret: !GetAtt Db.MasterUserSecret.SecretArn
      Name: !Sub ${AWS::StackName}-fn
      Subnets: [!Select [0, !GetAZs ""]]
      Bucket: !Ref Bucket
      MultiAZ: !If [IsProd, true, false]
      Plain: "!Ref not a tag"
`
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got := tmpl.Resources["Fn"].Properties
	want := map[string]any{
		"Role":    map[string]any{"Fn::GetAtt": []any{"Role", "Arn"}},
		"Secret":  map[string]any{"Fn::GetAtt": []any{"Db", "MasterUserSecret.SecretArn"}},
		"Name":    map[string]any{"Fn::Sub": "${AWS::StackName}-fn"},
		"Subnets": []any{map[string]any{"Fn::Select": []any{0, map[string]any{"Fn::GetAZs": ""}}}},
		"Bucket":  map[string]any{"Ref": "Bucket"},
		"MultiAZ": map[string]any{"Fn::If": []any{"IsProd", true, false}},
		"Plain":   "!Ref not a tag",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
	if d := tmpl.Resources["Fn"].DependsOnList(); !reflect.DeepEqual(d, []string{"A", "B"}) {
		t.Errorf("DependsOn %v", d)
	}
	if r, ok := Ref(got["Bucket"]); !ok || r != "Bucket" {
		t.Errorf("Ref = %q, %v", r, ok)
	}
}
