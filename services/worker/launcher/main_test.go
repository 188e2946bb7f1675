package launcher

import (
	"testing"

	"github.com/gantryhq/gantry/services/testenv"
)

func TestMain(m *testing.M) { testenv.MainNoLeaks(m) }
