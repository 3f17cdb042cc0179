//go:build race

package appwritetest_test

const raceEnabled = true
