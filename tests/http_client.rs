//! The relay's HTTP client, against a local endpoint that answers SQS and SNS and counts the
//! connections it accepts (no network, nothing installed):
//! - every AWS SDK client shares one connection pool: SQS and SNS calls reuse the same keep-alive
//!   connections instead of each service client opening its own (31–33 connections were opened for
//!   16 calls in flight);
//! - the trust roots, loaded at the first call rather than at init, still come from the system or
//!   from `SSL_CERT_FILE`: the relay binary reaches an HTTPS endpoint whose certificate only the
//!   test CA in `tests/fixtures/tls` signs when, and only when, `SSL_CERT_FILE` names that CA;
//! - the request's `X-Amzn-Trace-Id` is the relay's: none on an SQS call, the trace group's own
//!   on an SNS call, never the process-wide one the SDK would copy from `_X_AMZN_TRACE_ID`.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use s3_trace_relay::publish::sdk_config_loader;
use s3_trace_relay::response::RelayResponse;
use s3_trace_relay::{AwsPublisher, InvocationInfo, Relay, RelayConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use support::fake_publisher::failed_ids;
use support::relay_process::{WAIT, failed_items};
use support::runtime_api::{Invocation, RelayProcess, RuntimeApi};

/// Connections accepted and calls answered by the endpoint.
#[derive(Default)]
struct Counts {
    connections: AtomicUsize,
    sqs_calls: AtomicUsize,
    sns_calls: AtomicUsize,
    /// Each SNS call's `X-Amzn-Trace-Id`, and each SQS call's, in arrival order.
    sns_trace_headers: Mutex<Vec<Option<String>>>,
    sqs_trace_headers: Mutex<Vec<Option<String>>>,
}

/// Serves SQS `SendMessageBatch` (JSON) and SNS `PublishBatch` (query) on one port, accepting
/// every entry; returns its address.
async fn endpoint(counts: Arc<Counts>) -> String {
    format!("http://{}", serve(counts, None).await)
}

/// Like [`endpoint`], over TLS with the certificate in `tests/fixtures/tls` (127.0.0.1, signed by
/// the test CA); returns its `https://` address.
async fn tls_endpoint(counts: Arc<Counts>) -> String {
    let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let chain = CertificateDer::pem_file_iter(format!("{tls}/server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{tls}/server-key.pem")).unwrap();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    format!(
        "https://{}",
        serve(counts, Some(TlsAcceptor::from(Arc::new(config)))).await
    )
}

/// Accepts connections on a free port (over TLS with `tls`), counting them; returns `host:port`.
async fn serve(counts: Arc<Counts>, tls: Option<TlsAcceptor>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let (counts, tls) = (Arc::clone(&counts), tls.clone());
            tokio::spawn(async move {
                match tls {
                    // A client that does not trust the certificate ends the handshake: nothing to serve.
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            serve_connection(counts, stream).await;
                        }
                    }
                    None => serve_connection(counts, stream).await,
                }
            });
        }
    });
    address.to_string()
}

async fn serve_connection(counts: Arc<Counts>, stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) {
    let service = service_fn(move |request| answer(Arc::clone(&counts), request));
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(counts: Arc<Counts>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let sqs = request
        .headers()
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes().ends_with(b".SendMessageBatch"));
    let trace = request
        .headers()
        .get("x-amzn-trace-id")
        .map(|h| h.to_str().unwrap().to_owned());
    match sqs {
        true => counts.sqs_trace_headers.lock().unwrap().push(trace),
        false => counts.sns_trace_headers.lock().unwrap().push(trace),
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (content_type, text) = if sqs {
        counts.sqs_calls.fetch_add(1, Ordering::SeqCst);
        ("application/x-amz-json-1.0", sqs_answer(&body))
    } else {
        counts.sns_calls.fetch_add(1, Ordering::SeqCst);
        ("text/xml", sns_answer(&body))
    };
    let response = Response::builder()
        .header("content-type", content_type)
        .header("x-amzn-requestid", "request-1")
        .body(Full::new(Bytes::from(text)))
        .unwrap();
    Ok(response)
}

fn sqs_answer(body: &[u8]) -> String {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap();
    let successful: Vec<serde_json::Value> = request["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::json!({"Id": e["Id"], "MessageId": "m-1", "MD5OfMessageBody": "0"}))
        .collect();
    serde_json::json!({"Successful": successful, "Failed": []}).to_string()
}

fn sns_answer(body: &[u8]) -> String {
    let form = String::from_utf8_lossy(body);
    let members: String = form
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| name.starts_with("PublishBatchRequestEntries.member.") && name.ends_with(".Id"))
        .map(|(_, id)| format!("<member><Id>{id}</Id><MessageId>m-1</MessageId></member>"))
        .collect();
    format!(
        "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>\
         <Successful>{members}</Successful><Failed/></PublishBatchResult>\
         <ResponseMetadata><RequestId>request-1</RequestId></ResponseMetadata></PublishBatchResponse>"
    )
}

/// The relay over the real SDK clients, with a queue and a topic behind `endpoint`, one call in
/// flight.
async fn relay(endpoint: &str) -> Relay<AwsPublisher> {
    let targets = format!("{endpoint}/123456789012/uploads,arn:aws:sns:us-east-1:123456789012:uploads");
    // One call at a time: a second connection could only come from a second pool.
    let config = RelayConfig::from_lookup(|name| match name {
        "RELAY_TARGETS" => Some(targets.clone()),
        "RELAY_MAX_IN_FLIGHT" => Some("1".to_owned()),
        _ => None,
    })
    .unwrap();
    let sdk_config = sdk_config_loader(Duration::from_secs(5))
        .await
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "AKID", "secret", None, None, "test",
        ))
        .load()
        .await;
    let publisher = AwsPublisher::new(&sdk_config, config.targets.iter().map(|t| &t.destination));
    Relay::new(Arc::new(config), publisher)
}

#[tokio::test]
async fn queue_and_topic_calls_share_one_connection() {
    let counts = Arc::new(Counts::default());
    let relay = relay(&endpoint(Arc::clone(&counts)).await).await;
    let event = include_str!("../events/s3-put.json");
    for n in 0..3 {
        let info = InvocationInfo {
            request_id: format!("r-{n}"),
            ..InvocationInfo::default()
        };
        match relay.handle(event, &info).await.unwrap() {
            RelayResponse::Done(summary) => assert_eq!(summary.published, 2, "{summary:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(counts.sqs_calls.load(Ordering::SeqCst), 3);
    assert_eq!(counts.sns_calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        counts.connections.load(Ordering::SeqCst),
        1,
        "one keep-alive connection for both services"
    );
}

/// Invokes the relay binary once with an SQS-wrapped S3 event, against `endpoint` over HTTPS, with
/// `extra` environment; returns the messages it reported failed.
async fn relay_over_tls(endpoint: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let targets = format!("{endpoint}/123456789012/uploads,arn:aws:sns:us-east-1:123456789012:uploads");
    let mut env = vec![
        ("RELAY_TARGETS", targets.as_str()),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_MAX_ATTEMPTS", "1"),
    ];
    env.extend_from_slice(extra);
    let api = RuntimeApi::start().await;
    let process = RelayProcess::spawn(&api, &env);
    let payload = support::fixture("sqs-batch-mixed-trace.json");
    let outcome = api.invoke(Invocation::new(payload)).outcome(WAIT).await;
    let response = outcome.expect_response();
    drop(process);
    failed_items(&response)
}

#[tokio::test]
async fn a_ca_named_by_ssl_cert_file_is_trusted_at_the_first_call() {
    let counts = Arc::new(Counts::default());
    let endpoint = tls_endpoint(Arc::clone(&counts)).await;
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
    let failed = relay_over_tls(&endpoint, &[("SSL_CERT_FILE", ca)]).await;
    assert_eq!(failed, Vec::<String>::new());
    assert!(counts.sqs_calls.load(Ordering::SeqCst) >= 1);
    assert!(counts.sns_calls.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn without_the_ca_the_endpoint_is_not_trusted_and_every_message_is_reported() {
    let counts = Arc::new(Counts::default());
    let endpoint = tls_endpoint(Arc::clone(&counts)).await;
    let failed = relay_over_tls(&endpoint, &[]).await;
    assert!(!failed.is_empty(), "an untrusted endpoint must fail the messages");
    assert_eq!(
        counts.sqs_calls.load(Ordering::SeqCst) + counts.sns_calls.load(Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn requests_carry_the_relays_trace_header_not_the_process_wide_one() {
    let counts = Arc::new(Counts::default());
    let endpoint = endpoint(Arc::clone(&counts)).await;
    let targets = format!("{endpoint}/123456789012/uploads,arn:aws:sns:us-east-1:123456789012:uploads");
    // With a function name, the SDK's recursion detection copies `_X_AMZN_TRACE_ID`, which the
    // runtime sets to the invocation's header, onto every request that has none.
    let env = [
        ("RELAY_TARGETS", targets.as_str()),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "relay"),
    ];
    let api = RuntimeApi::start().await;
    let process = RelayProcess::spawn(&api, &env);
    let invocation_header = "Root=1-6759e988-bd862e3fe1be46a994272794;Parent=1111111111111111;Sampled=1";
    let payload = support::fixture("sqs-batch-mixed-trace.json");
    let invocation = Invocation::new(payload).with_trace(invocation_header);
    let response = api.invoke(invocation).outcome(WAIT).await.expect_response();
    drop(process);
    assert_eq!(failed_items(&response), Vec::<String>::new());
    let sqs = counts.sqs_trace_headers.lock().unwrap().clone();
    assert_eq!(sqs, vec![None], "SQS entries carry their own AWSTraceHeader");
    let mut sns = counts.sns_trace_headers.lock().unwrap().clone();
    sns.sort();
    // The first message's header, canonical; the other two fall back to the invocation's.
    let own = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    assert_eq!(sns, vec![Some(own.to_owned()), Some(invocation_header.to_owned())]);
}

/// Accepts connections and reads what comes, never answering; counts the connections the client
/// closed. Returns its address.
async fn silent_endpoint(closed: Arc<AtomicUsize>) -> String {
    use tokio::io::AsyncReadExt as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = Arc::clone(&closed);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
                closed.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn a_call_given_up_at_the_deadline_margin_stops_with_its_invocation() {
    let closed = Arc::new(AtomicUsize::new(0));
    let relay = relay(&silent_endpoint(Arc::clone(&closed)).await).await;
    // The default margin is 500 ms: the relay stops waiting about a second in, long before the
    // SDK's own 5 s attempt timeout.
    let info = InvocationInfo {
        request_id: "r-deadline".into(),
        deadline_ms: support::deadline_in(1_500),
        ..InvocationInfo::default()
    };
    let event = support::fixture("sqs-batch-mixed-trace.json");
    let response = relay.handle_payload(Bytes::from(event), &info).await.unwrap();
    assert!(!failed_ids(&response).is_empty());
    // The abandoned call ended with the invocation: its connection closes now, not when the attempt
    // times out (a call left running would hold it, and retry, into the next invocation).
    tokio::time::timeout(Duration::from_secs(1), async {
        while closed.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the connection of the abandoned call is closed");
}
