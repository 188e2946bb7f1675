package testenv

import (
	"strconv"
	"strings"
)

// maxIdentifier is PostgreSQL's limit on a database name, in bytes.
const maxIdentifier = 63

// databaseName returns t_<sanitised test name>_<n>, cut to fit PostgreSQL's limit. Lower case
// letters, digits and single underscores keep it readable in psql without quoting.
func databaseName(testName string, n int64) string {
	var b strings.Builder
	underscore := false
	for _, r := range strings.ToLower(testName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			underscore = false
			continue
		}
		if !underscore && b.Len() > 0 {
			b.WriteByte('_')
			underscore = true
		}
	}
	base := strings.TrimRight(b.String(), "_")
	suffix := "_" + strconv.FormatInt(n, 10)
	if room := maxIdentifier - len("t_") - len(suffix); len(base) > room {
		base = strings.TrimRight(base[:room], "_")
	}
	return "t_" + base + suffix
}
