// The coordinator's web UI: one self-contained page (coordinator/web/index.html,
// plain JavaScript, no build step, no external assets) served at GET / on
// rest.port. It polls the REST API every 2 s.
#pragma once

#include <string_view>

namespace slipstream {

std::string_view WebUiHtml();

}  // namespace slipstream
