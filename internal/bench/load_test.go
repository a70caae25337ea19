package bench

import (
	"slices"
	"strings"
	"testing"
)

func TestParseLoadAvg(t *testing.T) {
	tests := []struct {
		in      string
		want    []float64
		wantErr string
	}{
		{"1.53 1.90 2.39 1/78 15618\n", []float64{1.53, 1.90, 2.39}, ""},
		{"0.00 0.01 0.05 2/100 1", []float64{0, 0.01, 0.05}, ""},
		{"1.0 2.0", nil, "fewer than 3 fields"},
		{"", nil, "fewer than 3 fields"},
		{"1.0 x 3.0 1/1 1", nil, "field 2"},
		{"1.0 2.0 -3.0 1/1 1", nil, "field 3"},
	}
	for _, tt := range tests {
		got, err := parseLoadAvg(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseLoadAvg(%q) = %v, %v; want an error saying %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseLoadAvg(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
