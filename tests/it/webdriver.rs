//! A small WebDriver client over ureq: chromedriver drives Debian's headless
//! Chromium. [`Browser::start`] finds both, or says why it cannot (the test
//! then prints `SKIPPED: ...` and passes, unless `JOBQ_REQUIRE_BROWSER=1`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

const CHROMIUM: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const DRIVER: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session and the chromedriver that runs it.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

fn found(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Starts a browser, or returns why it cannot; fails the test instead when
/// `JOBQ_REQUIRE_BROWSER=1` (CI).
pub fn browser_or_skip(test: &str) -> Option<Browser> {
    match Browser::start() {
        Ok(b) => Some(b),
        Err(why) if std::env::var("JOBQ_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("{test}: no browser ({why}) and JOBQ_REQUIRE_BROWSER=1")
        }
        Err(why) => {
            println!("SKIPPED: {test}: {why} (install chromium and chromium-driver)");
            None
        }
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session.
    pub fn start() -> Result<Browser, String> {
        let chromium = found(&CHROMIUM).ok_or("chromium not found")?;
        let driver_bin = found(&DRIVER).ok_or("chromedriver not found")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start chromedriver: {e}"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
            _profile: profile,
        };
        b.wait_ready()?;
        b.session = b.new_session(&chromium)?;
        Ok(b)
    }

    fn wait_ready(&self) -> Result<(), String> {
        // Up to 30 s: the machine may be busy building.
        for _ in 0..600 {
            if let Ok(mut r) = self.agent.get(format!("{}/status", self.base)).call() {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if v["value"]["ready"] == true {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("chromedriver did not become ready".into())
    }

    fn new_session(&self, chromium: &Path) -> Result<String, String> {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", self._profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let v = self.send("POST", "/session", Some(caps))?;
        v["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no session: {v}"))
    }

    /// One WebDriver command; its `value`, or the driver's error message.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let res = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(b.unwrap_or(json!({})).to_string()),
        };
        let mut res = res.map_err(|e| format!("{method} {path}: {e}"))?;
        let ok = res.status().is_success();
        let text = res.body_mut().read_to_string().map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if ok {
            Ok(v.get("value").cloned().unwrap_or(v))
        } else {
            Err(format!("{method} {path}: {}", v["value"]["message"]))
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.send(method, &path, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current page's URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The current page's HTML as the browser holds it now.
    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<Element<'_>> {
        let body = json!({"using": "css selector", "value": css});
        let path = format!("/session/{}/element", self.session);
        let v = match self.send("POST", &path, Some(body)) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("find {css}: {e}");
                return None;
            }
        };
        let Some(id) = v[ELEMENT].as_str() else {
            eprintln!("find {css}: {v}");
            return None;
        };
        let id = id.to_string();
        Some(Element { browser: self, id })
    }

    /// The first element matching `css`; panics when there is none.
    pub fn el(&self, css: &str) -> Element<'_> {
        self.find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}", self.url()))
    }

    /// The text of the first element matching `css`, read again when the page
    /// replaced the element meanwhile (the dashboard's live refresh does).
    pub fn text_of(&self, css: &str) -> String {
        for _ in 0..20 {
            let Some(el) = self.find(css) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let path = format!("/session/{}/element/{}/text", self.session, el.id);
            match self.send("GET", &path, None) {
                Ok(v) => return v.as_str().unwrap_or("").to_string(),
                Err(e) if e.contains("stale element") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no stable element {css} on {}", self.url())
    }

    /// Clicks the first element matching `css`, found again when the page
    /// replaced it meanwhile.
    pub fn click(&self, css: &str) {
        for _ in 0..20 {
            let el = self.el(css);
            let path = format!("/session/{}/element/{}/click", self.session, el.id);
            match self.send("POST", &path, Some(json!({}))) {
                Ok(_) => return,
                Err(e) if e.contains("stale element") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no stable element {css} on {}", self.url())
    }

    /// Clicks the first element matching `css` (a link or a form's button) and
    /// waits until the page it leads to has loaded: a click may return before
    /// the navigation it starts is done.
    pub fn submit(&self, css: &str) {
        self.eval("window.__jobqLeaving = true; return null;");
        self.click(css);
        let path = format!("/session/{}/execute/sync", self.session);
        let script =
            "return window.__jobqLeaving === undefined && document.readyState === 'complete';";
        crate::util::wait_for(
            &format!("the page after clicking {css}"),
            Duration::from_secs(30),
            || {
                let body = json!({"script": script, "args": []});
                self.send("POST", &path, Some(body))
                    .is_ok_and(|v| v == true)
            },
        );
    }

    /// Runs `script` in the page and returns its value.
    pub fn eval(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or(""))
            .expect("a base64 screenshot");
        std::fs::write(path, png).expect("screenshot written");
    }
}

impl Element<'_> {
    fn path(&self, what: &str) -> String {
        format!("/element/{}/{what}", self.id)
    }

    /// Types `text` into the element.
    pub fn type_text(&self, text: &str) {
        self.browser
            .cmd("POST", &self.path("value"), Some(json!({ "text": text })));
    }

    /// The element's rendered text.
    pub fn text(&self) -> String {
        let v = self.browser.cmd("GET", &self.path("text"), None);
        v.as_str().unwrap_or("").to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.send("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
