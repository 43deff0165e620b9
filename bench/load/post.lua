-- bench/load/post.lua — wrk script for bench/load/proxy.sh: every request is
-- POST /v1/chat/completions (or $WRK_PATH) with the JSON body read from the file named by WRK_BODY_FILE and,
-- when WRK_AUTH is set, "Authorization: Bearer $WRK_AUTH". No response() hook: defining one
-- makes wrk hand every body to Lua, which costs wrk CPU; wrk's own "Non-2xx or 3xx
-- responses" and "Socket errors" lines report failures.
local body_file = os.getenv("WRK_BODY_FILE")
local file = body_file and io.open(body_file, "rb")
if not file then
    error("WRK_BODY_FILE is unset or unreadable: " .. tostring(body_file))
end
wrk.method = "POST"
wrk.path = os.getenv("WRK_PATH") or "/v1/chat/completions"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. auth
end
