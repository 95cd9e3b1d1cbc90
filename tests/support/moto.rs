//! A real SQS/SNS server for tests: moto in server mode, run by `scripts/moto_server.py` from the
//! repository's `.venv` (made by `scripts/bootstrap.sh`).
//!
//! One server per test binary, started on first use and kept until the test process exits (its
//! stdin is a pipe the process never closes; the server exits when it reads EOF). Tests in one
//! binary run on parallel threads, so [`moto()`] hands the server out under a process-wide lock and
//! resets it first: every moto test starts from an empty SQS/SNS and an empty call log.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::ops::Deref;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use hyper::Method;
use serde::Deserialize;

use super::http;

/// How long the server may take to print its READY line.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How many bytes of moto's own output to keep for failure messages.
const LOG_TAIL: usize = 8 * 1024;

/// The running moto server (see the module docs). Obtain it through [`moto()`].
pub struct Moto {
    endpoint: String,
    /// Keeps the server's stdin pipe open for the life of the test process.
    _child: Child,
    output: Arc<Mutex<String>>,
}

/// A message drained from a queue by [`Moto::receive_all`].
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub body: String,
    /// The `AWSTraceHeader` message system attribute.
    pub aws_trace_header: Option<String>,
    /// Message attributes with a string value (`String`/`Number` types), by name.
    pub message_attributes: HashMap<String, String>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// All message system attributes (`SentTimestamp`, `SequenceNumber`, …) by their wire name.
    pub attributes: HashMap<String, String>,
}

impl Received {
    /// The body parsed as JSON (panics if it is not).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("message body is not JSON ({e}): {}", self.body))
    }
}

/// One SQS/SNS/EventBridge/Step Functions request moto served, from `GET /_relay/calls`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Call {
    #[serde(default)]
    pub seq: u64,
    pub service: String,
    pub operation: String,
    /// The request's `X-Amzn-Trace-Id` header.
    #[serde(default)]
    pub trace_header: Option<String>,
    /// Queue URL or topic ARN the call addressed.
    #[serde(default)]
    pub target: Option<String>,
    /// Number of entries of a batch call.
    #[serde(default)]
    pub entries: Option<usize>,
    /// HTTP status moto answered with (`None` if the log was read mid-request).
    #[serde(default)]
    pub status: Option<u16>,
    /// `PutEvents`: each entry's `TraceHeader`; `StartExecution`: its `traceHeader`.
    #[serde(default)]
    pub entry_trace_headers: Option<Vec<Option<String>>>,
}

/// Exclusive use of the process-wide [`Moto`] for one test; derefs to it. The lock is released on
/// drop (also when the test panics).
pub struct MotoGuard {
    moto: &'static Moto,
    _lock: tokio::sync::MutexGuard<'static, ()>,
}

impl Deref for MotoGuard {
    type Target = Moto;
    fn deref(&self) -> &Moto {
        self.moto
    }
}

static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
static INSTANCE: OnceLock<Result<Moto, String>> = OnceLock::new();

/// Starts moto on first use, waits for exclusive use, resets it, and hands it out.
pub async fn moto() -> MotoGuard {
    let lock = LOCK.lock().await;
    let moto = match tokio::task::spawn_blocking(|| INSTANCE.get_or_init(start).as_ref()).await {
        Ok(Ok(moto)) => moto,
        Ok(Err(message)) => panic!("{message}"),
        Err(e) => panic!("starting moto: {e}"),
    };
    moto.reset().await;
    MotoGuard { moto, _lock: lock }
}

fn start() -> Result<Moto, String> {
    let root = super::repo_root();
    let python = root.join(".venv/bin/python");
    let script = root.join("scripts/moto_server.py");
    // bootstrap.sh is idempotent and fast (prints nothing) when .venv matches the pins, so run it
    // every time it exists: a stale venv is refreshed instead of failing on a version check.
    if !python.exists() || root.join("scripts/bootstrap.sh").is_file() {
        bootstrap(root)?;
        if !python.exists() {
            return Err(format!(
                "scripts/bootstrap.sh ran but {} still does not exist; run `scripts/bootstrap.sh` in {} and check its output",
                python.display(),
                root.display()
            ));
        }
    }
    if !script.is_file() {
        return Err(format!("{} is missing: the moto harness needs it", script.display()));
    }
    let mut child = Command::new(&python)
        .arg(&script)
        .args(["--port", "0"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning {} {}: {e}", python.display(), script.display()))?;
    let output: Arc<Mutex<String>> = Arc::default();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stdout_output = output.clone();
    std::thread::spawn(move || {
        pump(stdout, &stdout_output, |line| {
            if let Some(url) = line.trim().strip_prefix("READY ") {
                let _ = ready_tx.send(url.trim().to_owned());
            }
        })
    });
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_output = output.clone();
    std::thread::spawn(move || pump(stderr, &stderr_output, |_| {}));

    let endpoint = match ready_rx.recv_timeout(STARTUP_TIMEOUT) {
        Ok(url) => url.trim_end_matches('/').to_owned(),
        Err(_) => {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            return Err(format!(
                "moto ({} scripts/moto_server.py --port 0) did not print `READY http://127.0.0.1:<port>` within \
                 {STARTUP_TIMEOUT:?} (exit status: {status:?}). Try running it by hand in {}; if the venv is broken, \
                 delete .venv and run scripts/bootstrap.sh. Its output:\n{}",
                python.display(),
                root.display(),
                tail(&output.lock().unwrap_or_else(|p| p.into_inner()))
            ));
        }
    };
    Ok(Moto {
        endpoint,
        _child: child,
        output,
    })
}

fn bootstrap(root: &Path) -> Result<(), String> {
    let script = root.join("scripts/bootstrap.sh");
    if !script.is_file() {
        return Err(format!(
            "{} does not exist and {} is missing, so the moto harness cannot create it",
            root.join(".venv/bin/python").display(),
            script.display()
        ));
    }
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/bootstrap.sh failed ({}); run it by hand in {} to see why. stdout:\n{}\nstderr:\n{}",
            out.status,
            root.display(),
            tail(&String::from_utf8_lossy(&out.stdout)),
            tail(&String::from_utf8_lossy(&out.stderr))
        ));
    }
    Ok(())
}

fn pump(source: impl Read, sink: &Mutex<String>, mut on_line: impl FnMut(&str)) {
    let mut reader = BufReader::new(source);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                on_line(&text);
                let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                sink.push_str(&text);
                if sink.len() > 4 * LOG_TAIL {
                    let cut = sink.len() - LOG_TAIL;
                    let cut = (cut..sink.len()).find(|&i| sink.is_char_boundary(i)).unwrap_or(0);
                    sink.drain(..cut);
                }
            }
        }
    }
}

fn tail(s: &str) -> &str {
    if s.len() <= LOG_TAIL {
        return s;
    }
    let mut cut = s.len() - LOG_TAIL;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    &s[cut..]
}

impl Moto {
    /// `http://127.0.0.1:<port>`: the value for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The last few KiB moto printed (request log, tracebacks).
    pub fn server_output(&self) -> String {
        tail(&self.output.lock().unwrap_or_else(|p| p.into_inner())).to_owned()
    }

    #[track_caller]
    fn fail(&self, what: &str, err: impl std::fmt::Debug) -> ! {
        panic!(
            "moto: {what}: {err:?}\n--- moto output (tail) ---\n{}",
            self.server_output()
        )
    }

    /// Clears all SQS/SNS state and the call log (`moto()` already did this for you).
    pub async fn reset(&self) {
        match http::request(&self.endpoint, Method::POST, "/moto-api/reset", &[], "").await {
            Ok(r) if r.status.is_success() => {}
            Ok(r) => self.fail("POST /moto-api/reset", format!("{} {}", r.status, r.text())),
            Err(e) => self.fail("POST /moto-api/reset (is the server still running?)", e),
        }
    }

    /// This server as seen from `region`: its clients sign for that region and, as on AWS, see
    /// only the queues and topics created there. The methods below are [`HOME_REGION`]'s.
    pub fn in_region<'a>(&'a self, region: &'a str) -> Regional<'a> {
        Regional { moto: self, region }
    }

    /// [`Regional::sqs`] in [`HOME_REGION`].
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        self.in_region(HOME_REGION).sqs()
    }

    /// [`Regional::sns`] in [`HOME_REGION`].
    pub fn sns(&self) -> aws_sdk_sns::Client {
        self.in_region(HOME_REGION).sns()
    }

    /// [`Regional::create_queue`] in [`HOME_REGION`].
    pub async fn create_queue(&self, name: &str) -> String {
        self.in_region(HOME_REGION).create_queue(name).await
    }

    /// [`Regional::queue_arn`] in [`HOME_REGION`].
    pub async fn queue_arn(&self, queue_url: &str) -> String {
        self.in_region(HOME_REGION).queue_arn(queue_url).await
    }

    /// [`Regional::create_topic`] in [`HOME_REGION`].
    pub async fn create_topic(&self, name: &str) -> String {
        self.in_region(HOME_REGION).create_topic(name).await
    }

    /// [`Regional::subscribe_queue`] in [`HOME_REGION`].
    pub async fn subscribe_queue(&self, topic_arn: &str, queue_url: &str, raw: bool) {
        self.in_region(HOME_REGION)
            .subscribe_queue(topic_arn, queue_url, raw)
            .await
    }

    /// [`Regional::subscribe_queue_filtered`] in [`HOME_REGION`].
    pub async fn subscribe_queue_filtered(&self, topic_arn: &str, queue_url: &str, raw: bool, filter: Option<&str>) {
        self.in_region(HOME_REGION)
            .subscribe_queue_filtered(topic_arn, queue_url, raw, filter)
            .await
    }

    /// [`Regional::receive_all`] in [`HOME_REGION`].
    pub async fn receive_all(&self, queue_url: &str) -> Vec<Received> {
        self.in_region(HOME_REGION).receive_all(queue_url).await
    }

    /// Every SQS/SNS request served since the last reset, in order.
    pub async fn calls(&self) -> Vec<Call> {
        let resp = http::request(&self.endpoint, Method::GET, "/_relay/calls", &[], "")
            .await
            .unwrap_or_else(|e| self.fail("GET /_relay/calls", e));
        if !resp.status.is_success() {
            self.fail("GET /_relay/calls", format!("{} {}", resp.status, resp.text()));
        }
        serde_json::from_slice(&resp.body)
            .unwrap_or_else(|e| self.fail("GET /_relay/calls: unexpected JSON", format!("{e}: {}", resp.text())))
    }

    /// [`Moto::calls`] filtered to one operation (e.g. `"SendMessageBatch"`, `"PublishBatch"`).
    pub async fn calls_of(&self, operation: &str) -> Vec<Call> {
        self.calls()
            .await
            .into_iter()
            .filter(|c| c.operation == operation)
            .collect()
    }

    /// [`Regional::s3`] in [`HOME_REGION`].
    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.in_region(HOME_REGION).s3()
    }

    /// [`Regional::create_bucket_notifying`] in [`HOME_REGION`].
    pub async fn create_bucket_notifying(&self, bucket: &str, queue_arn: Option<&str>, topic_arn: Option<&str>) {
        self.in_region(HOME_REGION)
            .create_bucket_notifying(bucket, queue_arn, topic_arn)
            .await
    }

    /// [`Regional::create_bus_to_queue`] in [`HOME_REGION`].
    pub async fn create_bus_to_queue(&self, name: &str, source: &str, queue_url: &str) -> String {
        self.in_region(HOME_REGION)
            .create_bus_to_queue(name, source, queue_url)
            .await
    }

    /// [`Regional::create_state_machine`] in [`HOME_REGION`].
    pub async fn create_state_machine(&self, name: &str) -> String {
        self.in_region(HOME_REGION).create_state_machine(name).await
    }

    /// [`Regional::execution_names`] in [`HOME_REGION`].
    pub async fn execution_names(&self, state_machine_arn: &str) -> Vec<String> {
        self.in_region(HOME_REGION).execution_names(state_machine_arn).await
    }

    /// [`Regional::send_message`] in [`HOME_REGION`].
    pub async fn send_message(&self, queue_url: &str, body: &str) -> String {
        self.in_region(HOME_REGION).send_message(queue_url, body).await
    }

    /// [`Regional::publish`] in [`HOME_REGION`].
    pub async fn publish(&self, topic_arn: &str, message: &str) -> String {
        self.in_region(HOME_REGION).publish(topic_arn, message).await
    }
}

/// The region the relay under test runs in (the Runtime API stand-in's `AWS_REGION`).
pub const HOME_REGION: &str = "us-east-1";

/// [`Moto`] seen from one region; see [`Moto::in_region`].
pub struct Regional<'a> {
    moto: &'a Moto,
    region: &'a str,
}

impl Regional<'_> {
    /// An SQS client for this server, signing for this region, static credentials `testing`.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.to_owned()))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .endpoint_url(&self.moto.endpoint)
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// An SNS client for this server, signing for this region, static credentials `testing`.
    pub fn sns(&self) -> aws_sdk_sns::Client {
        use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_sns::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.to_owned()))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .endpoint_url(&self.moto.endpoint)
            .build();
        aws_sdk_sns::Client::from_conf(config)
    }

    /// An S3 client for this server (path-style addressing), signing for this region.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.to_owned()))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .endpoint_url(&self.moto.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates a bucket whose every event is notified to `queue_arn` and/or `topic_arn`. moto, like
    /// S3, sends an `s3:TestEvent` to each destination when the configuration is set.
    pub async fn create_bucket_notifying(&self, bucket: &str, queue_arn: Option<&str>, topic_arn: Option<&str>) {
        use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration, TopicConfiguration};
        let s3 = self.s3();
        if let Err(e) = s3.create_bucket().bucket(bucket).send().await {
            self.moto.fail(&format!("CreateBucket {bucket}"), e);
        }
        let events = [
            Event::from("s3:ObjectCreated:*"),
            Event::from("s3:ObjectRemoved:*"),
            Event::from("s3:ObjectTagging:*"),
        ];
        let mut config = NotificationConfiguration::builder();
        if let Some(arn) = queue_arn {
            let queue = QueueConfiguration::builder()
                .id("relay-queue")
                .queue_arn(arn)
                .set_events(Some(events.to_vec()))
                .build()
                .unwrap_or_else(|e| self.moto.fail("QueueConfiguration", e));
            config = config.queue_configurations(queue);
        }
        if let Some(arn) = topic_arn {
            let topic = TopicConfiguration::builder()
                .id("relay-topic")
                .topic_arn(arn)
                .set_events(Some(events.to_vec()))
                .build()
                .unwrap_or_else(|e| self.moto.fail("TopicConfiguration", e));
            config = config.topic_configurations(topic);
        }
        let put = s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config.build())
            .send()
            .await;
        if let Err(e) = put {
            self.moto
                .fail(&format!("PutBucketNotificationConfiguration {bucket}"), e);
        }
    }

    /// An EventBridge client for this server, signing for this region.
    pub fn events(&self) -> aws_sdk_eventbridge::Client {
        use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.to_owned()))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .endpoint_url(&self.moto.endpoint)
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }

    /// A Step Functions client for this server, signing for this region.
    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.to_owned()))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .endpoint_url(&self.moto.endpoint)
            .build();
        aws_sdk_sfn::Client::from_conf(config)
    }

    /// Creates an event bus whose every event from `source` goes to `queue_url`; returns its ARN.
    pub async fn create_bus_to_queue(&self, name: &str, source: &str, queue_url: &str) -> String {
        let events = self.events();
        let bus = events
            .create_event_bus()
            .name(name)
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail(&format!("CreateEventBus {name}"), e));
        let pattern = serde_json::json!({ "source": [source] }).to_string();
        events
            .put_rule()
            .name(format!("{name}-to-queue"))
            .event_bus_name(name)
            .event_pattern(pattern)
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail("PutRule", e));
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(self.queue_arn(queue_url).await)
            .build()
            .unwrap_or_else(|e| self.moto.fail("Target", e));
        events
            .put_targets()
            .rule(format!("{name}-to-queue"))
            .event_bus_name(name)
            .targets(target)
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail("PutTargets", e));
        bus.event_bus_arn().unwrap_or_default().to_owned()
    }

    /// Creates a Standard state machine with one Pass state; returns its ARN.
    pub async fn create_state_machine(&self, name: &str) -> String {
        let definition = r#"{"StartAt":"Done","States":{"Done":{"Type":"Pass","End":true}}}"#;
        let out = self
            .sfn()
            .create_state_machine()
            .name(name)
            .definition(definition)
            .role_arn("arn:aws:iam::123456789012:role/relay-test")
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail(&format!("CreateStateMachine {name}"), e));
        out.state_machine_arn().to_owned()
    }

    /// The names of a state machine's executions, sorted.
    pub async fn execution_names(&self, state_machine_arn: &str) -> Vec<String> {
        let out = self
            .sfn()
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail("ListExecutions", e));
        let mut names: Vec<String> = out.executions().iter().map(|e| e.name().to_owned()).collect();
        names.sort();
        names
    }

    /// Creates a queue in this region and returns its URL (`http://127.0.0.1:<port>/123456789012/<name>`). A name
    /// ending in `.fifo` makes a FIFO queue without content-based deduplication.
    pub async fn create_queue(&self, name: &str) -> String {
        let mut req = self.sqs().create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            req = req
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
        }
        match req.send().await {
            Ok(out) => out
                .queue_url()
                .unwrap_or_else(|| self.moto.fail("CreateQueue", "no QueueUrl"))
                .to_owned(),
            Err(e) => self.moto.fail(&format!("CreateQueue {name}"), e),
        }
    }

    /// The queue's ARN (`arn:aws:sqs:<region>:123456789012:<name>`).
    pub async fn queue_arn(&self, queue_url: &str) -> String {
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail(&format!("GetQueueAttributes {queue_url}"), e));
        out.attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_else(|| self.moto.fail("GetQueueAttributes", "no QueueArn"))
    }

    /// Creates a topic in this region and returns its ARN. A name ending in `.fifo` makes a FIFO topic without
    /// content-based deduplication.
    pub async fn create_topic(&self, name: &str) -> String {
        let mut req = self.sns().create_topic().name(name);
        if name.ends_with(".fifo") {
            req = req
                .attributes("FifoTopic", "true")
                .attributes("ContentBasedDeduplication", "false");
        }
        match req.send().await {
            Ok(out) => out
                .topic_arn()
                .unwrap_or_else(|| self.moto.fail("CreateTopic", "no TopicArn"))
                .to_owned(),
            Err(e) => self.moto.fail(&format!("CreateTopic {name}"), e),
        }
    }

    /// Subscribes a queue to a topic (`RawMessageDelivery` = `raw`).
    pub async fn subscribe_queue(&self, topic_arn: &str, queue_url: &str, raw: bool) {
        self.subscribe_queue_filtered(topic_arn, queue_url, raw, None).await
    }

    /// Subscribes a queue to a topic with a subscription `FilterPolicy` on message attributes.
    pub async fn subscribe_queue_filtered(&self, topic_arn: &str, queue_url: &str, raw: bool, filter: Option<&str>) {
        let queue_arn = self.queue_arn(queue_url).await;
        let mut req = self
            .sns()
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .return_subscription_arn(true);
        if raw {
            req = req.attributes("RawMessageDelivery", "true");
        }
        if let Some(policy) = filter {
            req = req.attributes("FilterPolicy", policy);
        }
        if let Err(e) = req.send().await {
            self.moto.fail(&format!("Subscribe {queue_arn} to {topic_arn}"), e);
        }
    }

    /// Drains a queue: ReceiveMessage (10 at a time, no wait, all attributes) until two empty
    /// answers in a row, deleting what it received. Order is moto's delivery order.
    pub async fn receive_all(&self, queue_url: &str) -> Vec<Received> {
        let sqs = self.sqs();
        let mut all = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let out = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap_or_else(|e| self.moto.fail(&format!("ReceiveMessage {queue_url}"), e));
            let messages = out.messages();
            if messages.is_empty() {
                empty += 1;
                continue;
            }
            empty = 0;
            for m in messages {
                if let Some(handle) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap_or_else(|e| self.moto.fail(&format!("DeleteMessage {queue_url}"), e));
                }
                all.push(to_received(m));
            }
        }
        all
    }

    /// Sends one message with SendMessage (FIFO queues: group `g`, a random deduplication id);
    /// returns its message id. For tests of SQS-triggered paths and of the harness itself.
    pub async fn send_message(&self, queue_url: &str, body: &str) -> String {
        let fifo = queue_url.ends_with(".fifo");
        let out = self
            .sqs()
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .set_message_group_id(fifo.then(|| "g".to_owned()))
            .set_message_deduplication_id(fifo.then(|| format!("{:016x}", rand::random::<u64>())))
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail(&format!("SendMessage {queue_url}"), e));
        out.message_id().unwrap_or_default().to_owned()
    }

    /// Publishes one message with Publish (FIFO topics: group `g`, a random deduplication id);
    /// returns its message id.
    pub async fn publish(&self, topic_arn: &str, message: &str) -> String {
        let fifo = topic_arn.ends_with(".fifo");
        let out = self
            .sns()
            .publish()
            .topic_arn(topic_arn)
            .message(message)
            .set_message_group_id(fifo.then(|| "g".to_owned()))
            .set_message_deduplication_id(fifo.then(|| format!("{:016x}", rand::random::<u64>())))
            .send()
            .await
            .unwrap_or_else(|e| self.moto.fail(&format!("Publish {topic_arn}"), e));
        out.message_id().unwrap_or_default().to_owned()
    }
}

fn to_received(m: &aws_sdk_sqs::types::Message) -> Received {
    let attributes: HashMap<String, String> = m
        .attributes()
        .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect())
        .unwrap_or_default();
    let message_attributes = m
        .message_attributes()
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Received {
        message_id: m.message_id().unwrap_or_default().to_owned(),
        body: m.body().unwrap_or_default().to_owned(),
        aws_trace_header: attributes.get("AWSTraceHeader").cloned(),
        message_attributes,
        group_id: attributes.get("MessageGroupId").cloned(),
        dedup_id: attributes.get("MessageDeduplicationId").cloned(),
        attributes,
    }
}
