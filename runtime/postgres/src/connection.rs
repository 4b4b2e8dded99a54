//! Connecting to a server: every connect is bounded in time, and connection strings
//! are shown with their passwords hidden.

use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::cluster::PgError;

/// How long a connect may take unless the connection string says otherwise
/// (`connect_timeout=SECONDS`): opening the socket, TLS negotiation, authentication and
/// the server's startup answer together.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The time limit of a connect to `connection_string`: its `connect_timeout` when it
/// has a positive one, else [`DEFAULT_CONNECT_TIMEOUT`].
pub fn connect_timeout(connection_string: &str) -> Duration {
    connection_string
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|config| config.get_connect_timeout().copied())
        .filter(|limit| !limit.is_zero())
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
}

/// Opens a connection within [`connect_timeout`], or fails saying how long it waited.
/// The caller drives the returned connection.
pub async fn connect_raw(
    connection_string: &str,
) -> Result<
    (
        Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    PgError,
> {
    let limit = connect_timeout(connection_string);
    match tokio::time::timeout(limit, tokio_postgres::connect(connection_string, NoTls)).await {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(source)) => Err(PgError::Connect {
            target: redact(connection_string),
            problem: connect_problem(&source),
            source,
        }),
        Err(_) => Err(PgError::ConnectTimeout {
            target: redact(connection_string),
            waited: limit,
        }),
    }
}

/// Connects to `connection_string` within [`connect_timeout`] and drives the
/// connection in a task.
///
/// # Example
/// ```no_run
/// # async fn demo() -> Result<(), stormchor_postgres::PgError> {
/// let client = stormchor_postgres::connect("host=127.0.0.1 user=postgres").await?;
/// client.batch_execute("SELECT 1").await.expect("answered");
/// # Ok(()) }
/// ```
pub async fn connect(connection_string: &str) -> Result<Client, PgError> {
    let (client, connection) = connect_raw(connection_string).await?;
    tokio::spawn(async move {
        // The connection ends with its client; errors show on the client's queries.
        let _ = connection.await;
    });
    Ok(client)
}

/// What went wrong in a statement, in words: the server's error with its severity,
/// SQLSTATE, detail and hint (tokio-postgres alone shows only "db error"), or the
/// chain of causes of a client-side error.
///
/// # Example
/// ```no_run
/// # async fn demo(client: tokio_postgres::Client) {
/// use stormchor_postgres::sql_problem;
/// if let Err(error) = client.batch_execute("CREATE SCHEMA s").await {
///     // "ERROR: permission denied for database postgres (SQLSTATE 42501)"
///     eprintln!("{}", sql_problem(&error));
/// }
/// # }
/// ```
pub fn sql_problem(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        text.push_str(&format!(": {current}"));
        cause = current.source();
    }
    text
}

/// What went wrong in a connect, in words: the server's message with its SQLSTATE and
/// what it means (authentication failed, no such database, ...), or what the network
/// said (refused, timed out, no such host or socket).
pub fn connect_problem(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        let meaning = match code {
            "28P01" | "28000" => "authentication failed: ",
            "3D000" => "no such database: ",
            "53300" => "too many connections: ",
            "57P03" => "the server is starting or stopping: ",
            _ => "the server refused the connection: ",
        };
        let mut text = format!("{meaning}{} (SQLSTATE {code})", db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    // The innermost cause names the network's verdict.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let mut io = None;
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<std::io::Error>() {
            io = Some(found);
        }
        cause = current.source();
    }
    // tokio-postgres shows its kind only; the causes say more.
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(current) = cause {
        text.push_str(&format!(": {current}"));
        cause = current.source();
    }
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            "connection refused (nothing listens there)".to_owned()
        }
        Some(std::io::ErrorKind::TimedOut) => {
            "the connection timed out (no answer from the host)".to_owned()
        }
        Some(std::io::ErrorKind::NotFound) => format!("no such socket or host ({text})"),
        Some(std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) => format!(
            "the other side closed the connection during the startup (is it a PostgreSQL server?): {text}"
        ),
        Some(std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput) => {
            format!("the other side does not speak the PostgreSQL protocol ({text})")
        }
        _ if text.starts_with("unexpected message")
            || text.starts_with("error parsing response")
            || text.contains("bytes remaining on stream")
            || text.contains("unknown message") =>
        {
            format!("the other side does not speak the PostgreSQL protocol ({text})")
        }
        _ if text.starts_with("connection closed") => format!(
            "the other side closed the connection during the startup (is it a PostgreSQL server?): {text}"
        ),
        _ => text,
    }
}

/// `connection_string` with every password replaced by `***`: the `password=` key of
/// the key-value form (quoted or not) and the `user:password@` part of a URL.
///
/// ```
/// use stormchor_postgres::redact;
///
/// assert_eq!(redact("host=db password=s3cret user=me"), "host=db password=*** user=me");
/// assert_eq!(redact("postgres://me:s3cret@db/app"), "postgres://me:***@db/app");
/// ```
pub fn redact(connection_string: &str) -> String {
    let text = connection_string.trim_start();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return redact_url(connection_string);
    }
    let mut out = String::with_capacity(connection_string.len());
    let mut rest = connection_string;
    while let Some(at) = find_password_key(rest) {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        // `password`, optional blanks, `=`, optional blanks.
        let eq = after.find('=').map_or(after.len(), |i| i + 1);
        let (key, mut value) = after.split_at(eq);
        out.push_str(key);
        let blanks = value.len() - value.trim_start().len();
        out.push_str(&value[..blanks]);
        value = &value[blanks..];
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            let mut end = value.len();
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 2;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            end
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        out.push_str("***");
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// Where a `password` key (followed by `=`) starts, at a word boundary.
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let at = from + found;
        let boundary = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[at + "password".len()..].trim_start();
        if boundary && after.starts_with('=') {
            return Some(at);
        }
        from = at + "password".len();
    }
    None
}

fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    // The user info ends at the last `@` before the host part.
    if let Some(scheme) = url.find("://") {
        let start = scheme + 3;
        let authority_end = url[start..]
            .find(['/', '?'])
            .map_or(url.len(), |i| start + i);
        if let Some(at) = url[start..authority_end].rfind('@') {
            let userinfo = &url[start..start + at];
            if let Some(colon) = userinfo.find(':') {
                out = format!("{}***{}", &url[..start + colon + 1], &url[start + at..]);
            }
        }
    }
    // A `password=` query parameter.
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_every_form() {
        for (input, expected) in [
            ("host=h password=secret", "host=h password=***"),
            ("password=secret host=h", "password=*** host=h"),
            (
                "host=h password = secret user=u",
                "host=h password = *** user=u",
            ),
            (
                "host=h PASSWORD='se cret\\' x' user=u",
                "host=h PASSWORD=*** user=u",
            ),
            (
                "host=h passwordx=1 mypassword=2",
                "host=h passwordx=1 mypassword=2",
            ),
            (
                "postgresql://u:secret@h:5432/db",
                "postgresql://u:***@h:5432/db",
            ),
            (
                "postgres://u@h/db?password=secret&sslmode=disable",
                "postgres://u@h/db?password=***&sslmode=disable",
            ),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("host=h user=u", "host=h user=u"),
        ] {
            assert_eq!(redact(input), expected, "{input}");
            assert!(!redact(input).contains("secret"), "{input}");
        }
    }

    #[test]
    fn the_connect_timeout_comes_from_the_string_or_the_default() {
        assert_eq!(
            connect_timeout("host=h connect_timeout=3"),
            Duration::from_secs(3)
        );
        assert_eq!(connect_timeout("host=h"), DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(
            connect_timeout("host=h connect_timeout=0"),
            DEFAULT_CONNECT_TIMEOUT
        );
    }
}
