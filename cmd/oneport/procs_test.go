package main

import "testing"

func TestDefaultProcs(t *testing.T) {
	for available, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 2, 7: 3, 64: 32} {
		if got := defaultProcs(available); got != want {
			t.Errorf("defaultProcs(%d) = %d, want %d", available, got, want)
		}
	}
}
