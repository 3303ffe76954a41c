// The demo page's script (tokens/templates/tokens/demo.html). Everything shown goes through
// textContent, never innerHTML: user agents and addresses are attacker-controlled.
import {createAuthClient, resetLinkFrom} from "./client.js";

// Where the project mounted the API (tokens.urls), as the page was rendered with it.
const apiRoot = document.body.dataset.apiRoot || "/api/auth/";
const auth = createAuthClient({baseUrl: apiRoot});
window.auth = auth; // for the browser tests and the curious
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

function showState() {
  const {status, reason, refreshAt} = auth.state;
  $("state").textContent = status;
  $("state").dataset.status = status;
  $("reason").textContent = reason ? `(${reason})` : "";
  $("countdown").textContent = refreshAt === null ? "–"
    : `${Math.max(0, Math.ceil((refreshAt - Date.now()) / 1000))} s`;
}

async function whoAmI() {
  const reply = await auth.fetch(`${apiRoot}me/`);
  $("whoami").textContent = JSON.stringify(await reply.json(), null, 2);
}

async function listSessions() {
  const rows = $("session-rows");
  rows.replaceChildren();
  for (const session of await auth.sessions()) {
    const row = document.createElement("tr");
    const cells = [session.current ? "current" : "", session.created_at, session.last_used_at,
      session.expires_at, session.ip_address, session.user_agent];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text ?? "";
      row.append(cell);
    }
    const button = document.createElement("button");
    button.textContent = "Revoke";
    button.addEventListener("click", async () => {
      await auth.revokeSession(session.id);
      await listSessions();
    });
    const action = document.createElement("td");
    action.append(button);
    row.append(action);
    rows.append(row);
  }
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const {ok, code} = await auth.login(form.username.value, form.password.value);
  $("login-error").textContent = ok ? "" : `refused: ${code}`;
  if (ok) form.reset();
});
$("forgot").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const {ok, code} = await auth.requestPasswordReset(form.email.value);
  $("forgot-result").textContent = ok ? "if an account has this address, a link is on its way"
    : `refused: ${code}`;
});

// A reset link (TOKENS["PASSWORD_RESET_URL"] = ".../demo/#reset={uid}/{token}"): taken out of
// the address bar at once, so it stays in no history entry, bookmark or screenshot.
/** @type {{uid: string, token: string} | null} */
let resetLink = null;
function offerReset() {
  const link = resetLinkFrom(location.hash);
  if (!link) return;
  resetLink = link;
  history.replaceState(null, "", location.pathname + location.search);
  $("reset-result").textContent = "";
  $("reset").hidden = false;
}
$("reset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  if (!resetLink) return;
  const {ok, code, errors} = await auth.confirmPasswordReset(resetLink, form.new_password.value);
  $("reset-result").textContent = ok ? "password set: log in with it"
    : `refused: ${code}${errors.length ? ` (${errors.join(" ")})` : ""}`;
  if (ok) form.reset();
});
addEventListener("hashchange", offerReset);
offerReset();
$("me").addEventListener("click", whoAmI);
$("sessions").addEventListener("click", listSessions);
$("logout").addEventListener("click", () => auth.logout());
$("logout-all").addEventListener("click", () => auth.logoutEverywhere());

auth.subscribe(showState);
setInterval(showState, 1000);
showState();
auth.restore();
