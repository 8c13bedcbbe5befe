//! `kuryr-server`'s command line, and the man page and shell completions made from it (the Debian
//! package runs `kuryr-server man` / `completions` at build time, so they never drift from the
//! flags).
//!
//! `kuryr-server [--config-file F]... [--config-dir D]... [serve|check-config|version]`, with the
//! oslo-style flags of the Python `kuryr-server` so existing unit files keep working.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// The binary's name: the man page's title and the completions' command.
pub const BIN_NAME: &str = "kuryr-server";

#[derive(Debug, Parser)]
#[command(
    name = "kuryr-server",
    about = "Kuryr libnetwork: Docker networking on OpenStack Neutron",
    long_about = "Kuryr libnetwork: Docker networking on OpenStack Neutron.\n\n\
        A Docker libnetwork remote network and IPAM driver, plugin name kuryr: Docker calls it \
        on /run/docker/plugins/kuryr.sock and it turns Docker's networks, endpoints and address \
        pools into Neutron networks, subnets, subnet pools and ports, then plugs each container's \
        veth where the port's binding says. Drop-in replacement for the Python \
        kuryr-libnetwork: same kuryr.conf, same Neutron names and tags."
)]
pub struct Cli {
    /// A kuryr.conf file; repeat to layer several (later ones win).
    #[arg(long = "config-file", value_name = "FILE", global = true)]
    pub config_files: Vec<PathBuf>,
    /// A directory of `*.conf` files read after the files, alphabetically.
    #[arg(long = "config-dir", value_name = "DIR", global = true)]
    pub config_dirs: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the plugin API (the default).
    Serve,
    /// Check the configuration and that Neutron answers; exit 1 when broken.
    CheckConfig,
    /// Print the version.
    Version,
    /// Print the man page (roff) on stdout.
    // Hidden from --help: a packaging tool, documented in the man page itself.
    #[command(hide = true)]
    Man,
    /// Print shell completions on stdout.
    #[command(hide = true)]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// Shells `completions` writes for (the ones Debian has completion directories for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// The shell completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), &mut cmd, BIN_NAME, &mut out);
    out
}

/// Sections clap does not know about: what an operator looks for in a daemon's page.
const MAN_TAIL: &str = r#".SH "PACKAGING COMMANDS"
.TP
\fBman\fR
Print this page (roff) on standard output.
.TP
\fBcompletions\fR \fIbash\fR|\fIzsh\fR|\fIfish\fR
Print the completion script for that shell on standard output.
.SH FILES
.TP
/etc/kuryr/kuryr.conf
The configuration read when no \fB\-\-config\-file\fR or \fB\-\-config\-dir\fR is given (the
Python kuryr\-libnetwork's format).
.TP
/run/docker/plugins/kuryr.sock
The plugin socket Docker finds the \fBkuryr\fR network and IPAM driver on (unless
\fBkuryr_uri\fR asks for TCP).
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter, e.g. \fBkuryr_driver=debug,info\fR.
.TP
\fBOS_\fISECTION\fB__\fIOPTION\fR
Overrides one kuryr.conf option, as oslo.config does (e.g. \fBOS_NEUTRON__PASSWORD\fR).
.TP
\fBLISTEN_FDS\fR, \fBLISTEN_PID\fR
A socket passed by systemd (socket activation) is served instead of binding one.
.TP
\fBNOTIFY_SOCKET\fR
When set (systemd \fBType=notify\fR), \fBserve\fR reports READY=1 once it is listening and
STOPPING=1 when it shuts down.
.SH "EXIT STATUS"
0 on success; 1 when the configuration cannot be loaded, Neutron refuses it, the socket cannot
be bound, or \fBcheck\-config\fR finds a problem.
.SH "SEE ALSO"
\fBdocker\fR(1), \fBsystemctl\fR(1), \fBsystemd.socket\fR(5)
"#;

/// The page's date, `YYYY-MM-DD`: `SOURCE_DATE_EPOCH` (reproducible package builds) or today.
fn man_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    let (y, m, d) = kuryr_types::calendar::civil_from_days(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One of clap_mangen's `render_*_section` methods.
type RenderSection = fn(&clap_mangen::Man, &mut Vec<u8>) -> std::io::Result<()>;

const IN_MEMORY: &str = "writing to memory cannot fail";

/// Escapes `text` as one line of roff text.
fn roff_line(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    // A leading `.` or `'` would be read as a request.
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// The man page, kuryr-server(1), in roff: clap's name, synopsis, description and options, the
/// subcommands (clap_mangen's own section points at per-subcommand pages, which are not
/// shipped), then files, environment and exit status.
pub fn man_page() -> Vec<u8> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .date(man_date())
        .source(format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    // Each section is rendered as a page of its own, with roff's preamble (the string
    // definitions before `.TH`): keep it once, at the top.
    let mut title = Vec::new();
    man.render_title(&mut title).expect(IN_MEMORY);
    let title = String::from_utf8(title).expect("roff is text");
    let preamble: Vec<&str> = title
        .lines()
        .take_while(|l| !l.starts_with(".TH"))
        .collect();
    let mut out = title.clone().into_bytes();
    let sections: [RenderSection; 4] = [
        |m, w| m.render_name_section(w),
        |m, w| m.render_synopsis_section(w),
        |m, w| m.render_description_section(w),
        |m, w| m.render_options_section(w),
    ];
    for render in sections {
        let mut section = Vec::new();
        render(&man, &mut section).expect(IN_MEMORY);
        for line in String::from_utf8(section).expect("roff is text").lines() {
            if !preamble.contains(&line) {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.extend_from_slice(format!(".TP\n\\fB{}\\fR\n", roff_line(sub.get_name())).as_bytes());
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            out.extend_from_slice(roff_line(&about.to_string()).as_bytes());
            out.push(b'\n');
        }
    }
    out.extend_from_slice(MAN_TAIL.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn man() -> String {
        String::from_utf8(man_page()).unwrap()
    }

    /// Every subcommand name, hidden ones included, as clap knows them.
    fn subcommand_names() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect()
    }

    #[test]
    fn man_page_names_every_subcommand_and_the_config_flags() {
        let page = man();
        let names = subcommand_names();
        for expected in ["serve", "check-config", "version", "man", "completions"] {
            assert!(
                names.iter().any(|n| n == expected),
                "no subcommand {expected}"
            );
        }
        for name in names {
            let roff = format!("\\fB{}\\fR", roff_line(&name));
            assert!(page.contains(&roff), "man page lacks {name}:\n{page}");
        }
        assert!(page.contains("config\\-file"), "no --config-file:\n{page}");
        assert!(page.contains("config\\-dir"), "no --config-dir:\n{page}");
    }

    #[test]
    fn man_page_is_titled_for_section_one_with_the_version() {
        let page = man();
        let title = page.lines().find(|l| l.starts_with(".TH")).unwrap();
        // Name, section, date, source, manual: five fields, none empty (an empty one would
        // shift the others).
        assert!(title.starts_with(".TH kuryr-server 1 20"), "{title}");
        assert!(title.ends_with(" \"User Commands\""), "{title}");
        assert!(title.contains(env!("CARGO_PKG_VERSION")), "{title}");
        // No reference to the per-subcommand pages clap_mangen's own section would name.
        assert!(!page.contains("kuryr\\-server\\-serve(1)"), "{page}");
        assert_eq!(page.matches(".TH ").count(), 1, "{page}");
        assert_eq!(
            page.matches(".ds Aq").count(),
            2,
            "preamble not once:\n{page}"
        );
        for section in [
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "COMMANDS",
            "FILES",
            "ENVIRONMENT",
        ] {
            assert!(page.contains(&format!(".SH {section}\n")), "no {section}");
        }
    }

    #[test]
    fn roff_lines_escape_requests_hyphens_and_backslashes() {
        assert_eq!(roff_line(".x-y"), "\\&.x\\-y");
        assert_eq!(roff_line("a\\b"), "a\\eb");
        assert_eq!(roff_line("'q"), "\\&'q");
    }

    #[test]
    fn bash_completions_offer_the_subcommands() {
        let bash = String::from_utf8(completions(Shell::Bash)).unwrap();
        assert!(bash.contains("check-config"), "{bash}");
        assert!(bash.contains("--config-file"), "{bash}");
        assert!(
            bash.contains("complete -F"),
            "not a bash completion:\n{bash}"
        );
    }

    #[test]
    fn zsh_and_fish_completions_are_for_kuryr_server() {
        let zsh = String::from_utf8(completions(Shell::Zsh)).unwrap();
        assert!(zsh.starts_with("#compdef kuryr-server"), "{zsh}");
        let fish = String::from_utf8(completions(Shell::Fish)).unwrap();
        assert!(fish.contains("complete -c kuryr-server"), "{fish}");
        assert!(fish.contains("check-config"), "{fish}");
    }

    #[test]
    fn the_packaging_commands_parse() {
        let cli = Cli::try_parse_from(["kuryr-server", "completions", "fish"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Completions { shell: Shell::Fish })
        ));
        let cli = Cli::try_parse_from(["kuryr-server", "--config-file", "a", "man"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Man)));
        assert!(Cli::try_parse_from(["kuryr-server", "completions", "powershell"]).is_err());
        // Hidden from --help, which lists the everyday commands.
        let help = Cli::command().render_help().to_string();
        assert!(
            help.contains("check-config") && !help.contains("completions"),
            "{help}"
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
