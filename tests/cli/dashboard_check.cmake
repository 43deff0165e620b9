# tests/cli/dashboard_check.cmake — the example Grafana dashboard (contrib/grafana) is JSON
# Grafana can import (panels with targets) and queries only metrics the README's
# Monitoring section documents. cmake -DDASHBOARD=... -DREADME=... -P this file.
file(READ "${DASHBOARD}" dashboard)
string(JSON panel_count ERROR_VARIABLE error LENGTH "${dashboard}" panels)
if(error OR panel_count EQUAL 0)
    message(FATAL_ERROR "${DASHBOARD}: not a dashboard with panels: ${error}")
endif()
file(READ "${README}" readme)
string(REGEX MATCHALL "ringway_[a-z_]+" used "${dashboard}")
list(REMOVE_DUPLICATES used)
foreach(metric IN LISTS used)
    # Histogram series carry a suffix the README's table leaves off.
    string(REGEX REPLACE "_(bucket|sum|count)$" "" documented "${metric}")
    string(FIND "${readme}" "`${documented}" at)
    if(at EQUAL -1)
        message(FATAL_ERROR "the dashboard queries ${metric}, which README.md does not list")
    endif()
endforeach()
# The spend panels: cost by model and by channel (per-key spend is no metric: the admin
# API's usage, grouped by key, has it).
foreach(metric IN ITEMS ringway_model_cost_usd_total ringway_channel_cost_usd_total)
    list(FIND used "${metric}" at)
    if(at EQUAL -1)
        message(FATAL_ERROR "the dashboard has no panel on ${metric}")
    endif()
endforeach()
message(STATUS "dashboard: ${panel_count} panels, every metric documented")
