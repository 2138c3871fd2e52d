"""Every label of the audit bundle in Japanese and English, and the policy wording each finding
code enforces (the quotes of docs/findings.md and the domain notes, kept here as data so the
report can print them beside each finding).

Japanese is the audience's first language: the Japanese is written as an auditor would write it
(判定: 適合 / 不適合あり), not translated word for word.
"""

from __future__ import annotations

from dataclasses import dataclass

LANGS = ("ja", "en")

LABELS: dict[str, dict[str, str]] = {
    "doc_title": {"ja": "三層の対策 適合性監査報告書", "en": "Three-tier separation audit report"},
    "subject": {"ja": "対象", "en": "Subject"},
    "generated": {"ja": "作成日時", "en": "Generated"},
    "tool": {"ja": "検証ツール", "en": "Tool"},
    "verdict": {"ja": "判定", "en": "Verdict"},
    "status.compliant": {"ja": "適合", "en": "Compliant"},
    "status.violations": {"ja": "不適合あり", "en": "Violations found"},
    "status.incomplete": {"ja": "判定不能（不完全）", "en": "Incomplete (cannot be judged in full)"},
    "status_note.compliant": {
        "ja": "宣言されたモデルに反する通信経路・通信は検出されませんでした。",
        "en": "Nothing was found that the declared model forbids.",
    },
    "status_note.violations": {
        "ja": "モデルに反する通信経路または通信を検出しました。下記の検出事項を確認してください。",
        "en": "Paths or traffic that the model forbids were found; see the findings below.",
    },
    "status_note.incomplete": {
        "ja": "違反は検出されませんでしたが、解析できなかった部分があります。下記の理由を確認してください。",
        "en": "No violation was found, but part of the input could not be analysed; see the reasons below.",
    },
    "command.check": {"ja": "構成の検証（check）", "en": "Configuration check (check)"},
    "command.replay": {"ja": "通信記録の検証（replay）", "en": "Capture replay (replay)"},
    "incomplete_reasons": {"ja": "不完全となった理由", "en": "Why the analysis is incomplete"},
    "toc": {"ja": "目次", "en": "Contents"},
    "sec.model": {"ja": "1. 採用モデルと認められる通信", "en": "1. Declared model and what it permits"},
    "sec.matrix": {"ja": "2. 系統間通信マトリクス", "en": "2. Family matrix"},
    "sec.drawing": {"ja": "3. ネットワーク構成図", "en": "3. Network drawing"},
    "sec.findings": {"ja": "4. 検出事項", "en": "4. Findings"},
    "sec.flows": {"ja": "5. 通信フローの概要", "en": "5. Flow table summary"},
    "sec.attest": {"ja": "6. 監査人確認事項", "en": "6. Items for the auditor to attest"},
    "sec.inputs": {"ja": "7. 検証対象ファイル", "en": "7. Inputs examined"},
    "model": {"ja": "採用モデル", "en": "Model"},
    "model_permits": {"ja": "このモデルで認められる系統間通信", "en": "What this model permits between families"},
    "matrix_note": {
        "ja": "行が通信の開始側、列が応答側の系統です。各欄に、モデル上の扱い、宣言された通信経路・例外、"
              "検出事項を示します。",
        "en": "Rows are the initiator's family, columns the responder's. Each cell gives what the model allows, "
              "the channels or exceptions declared, and any finding.",
    },
    "matrix_from_to": {"ja": "開始側 ＼ 応答側", "en": "From \\ To"},
    "cell.intra": {"ja": "同一系統（対象外）", "en": "Same family (out of scope)"},
    "cell.forbidden": {"ja": "通信禁止", "en": "Nothing may cross"},
    "cell.exceptions": {"ja": "特定の例外のみ", "en": "Narrow exceptions only"},
    "cell.channels": {"ja": "無害化通信のみ", "en": "Sanitized traffic only"},
    "cell.none_declared": {"ja": "宣言なし", "en": "none declared"},
    "cell.ok": {"ja": "違反なし", "en": "no violation"},
    "cell.violation": {"ja": "違反あり", "en": "violation"},
    "cell.refused": {"ja": "モデル上無効", "en": "not valid under the model"},
    "cell.flows": {"ja": "観測通信", "en": "observed flows"},
    "drawing_legend": {
        "ja": "系統ごとに色分けしたセグメント、ファイアウォール（FW）、ルータ、通信経路（緑）、例外（青）、"
              "違反（赤）を示します。",
        "en": "Segments coloured by family, firewalls (FW), routers, channels (green), exceptions (blue) and "
              "violations (red).",
    },
    "no_findings": {"ja": "検出事項はありません。", "en": "No findings."},
    "severity": {"ja": "重要度", "en": "Severity"},
    "code": {"ja": "コード", "en": "Code"},
    "from": {"ja": "送信元", "en": "From"},
    "to": {"ja": "宛先", "en": "To"},
    "segments": {"ja": "セグメント", "en": "Segments"},
    "source_cmd": {"ja": "検出元", "en": "Found by"},
    "message": {"ja": "内容", "en": "Details"},
    "witness": {"ja": "実証パケット（具体例）", "en": "Witness packet"},
    "observed_flow": {"ja": "観測した通信", "en": "Observed flow"},
    "path": {"ja": "通過経路と許可ルール", "en": "Path and the rule that lets it through"},
    "rules": {"ja": "関係するルール", "en": "Rules involved"},
    "via": {"ja": "経由機器（フィルタなし）", "en": "Through (no filtering)"},
    "packets": {"ja": "該当パケット数", "en": "Packets concerned"},
    "details": {"ja": "詳細", "en": "More"},
    "policy": {"ja": "根拠となる規定", "en": "Policy wording enforced"},
    "policy_caution": {
        "ja": "引用は各市のセキュリティポリシーの原文です。総務省ガイドラインの条文は要旨のみ記載しています。"
              "報告書を提出する際は、自団体のポリシーの該当条項を確認してください。",
        "en": "Quotes are verbatim from city security policies; the national guideline is only paraphrased. "
              "Cite your own policy's clause when you file the report.",
    },
    "flows_total": {"ja": "通信フロー数", "en": "Flows"},
    "flows_cross": {"ja": "系統をまたぐ通信", "en": "Cross-family flows"},
    "flows_by_verdict": {"ja": "判定別の件数", "en": "Flows by verdict"},
    "flows_listed": {"ja": "系統をまたぐ通信（先頭 {n} 件）", "en": "Cross-family flows (first {n})"},
    "flow.initiator": {"ja": "開始側", "en": "Initiator"},
    "flow.responder": {"ja": "応答側", "en": "Responder"},
    "flow.proto": {"ja": "プロトコル", "en": "Proto"},
    "flow.segments": {"ja": "セグメント", "en": "Segments"},
    "flow.packets": {"ja": "パケット数", "en": "Packets"},
    "flow.bytes": {"ja": "バイト数", "en": "Bytes"},
    "flow.verdict": {"ja": "判定", "en": "Verdict"},
    "count": {"ja": "件数", "en": "Count"},
    "attest_note": {
        "ja": "以下は通信やファイアウォール設定からは確認できない事項です。監査人が現地確認・書類確認により"
              "確認し、結果を記入してください。",
        "en": "Traffic and firewall rules cannot show the items below. The auditor confirms each on site or "
              "from records and records the result.",
    },
    "attest_confirmed": {"ja": "確認結果", "en": "Result"},
    "attest_remarks": {"ja": "備考", "en": "Remarks"},
    "attest_item": {"ja": "確認事項", "en": "Item"},
    "inputs_note": {
        "ja": "本報告書は以下のファイル（SHA-256 で特定）のみを根拠とします。ハッシュ値が異なるファイルには"
              "適用できません。",
        "en": "This report is evidence for these files only, identified by SHA-256; it says nothing about "
              "files with other hashes.",
    },
    "file": {"ja": "ファイル", "en": "File"},
    "stats": {"ja": "検証した範囲", "en": "What was analysed"},
    "footer": {
        "ja": "この報告書は segverify により自動生成されました。同じ入力と同じ版からは、作成日時を除き同一の"
              "結果が得られます。",
        "en": "Generated by segverify. The same inputs and version give the same result, apart from the time.",
    },
    "svg_title": {"ja": "ネットワーク構成図", "en": "Network drawing"},
    "firewall": {"ja": "ファイアウォール", "en": "Firewall"},
    "router": {"ja": "ルータ", "en": "Router"},
    "host_bypass": {"ja": "複数系統に接続された端末", "en": "Multi-homed host"},
    "sanitizer": {"ja": "無害化装置", "en": "Sanitizer"},
    "channel": {"ja": "通信経路", "en": "Channel"},
    "exception": {"ja": "例外", "en": "Exception"},
    "violation": {"ja": "違反", "en": "Violation"},
    "declared_channels": {"ja": "宣言された通信経路", "en": "Declared channels"},
    "declared_exceptions": {"ja": "宣言された例外", "en": "Declared exceptions"},
    "none": {"ja": "なし", "en": "none"},
    "csv.command": {"ja": "検出元", "en": "command"},
    "csv.title": {"ja": "見出し", "en": "title"},
    "csv.files": {"ja": "ファイル名", "en": "files"},
    "csv.location": {"ja": "設定箇所", "en": "location"},
    "csv.witness": {"ja": "実証パケット・観測通信", "en": "witness_or_flow"},
    "csv.message_ja": {"ja": "内容（日本語）", "en": "message_ja"},
    "csv.message_en": {"ja": "内容（英語）", "en": "message_en"},
}

FAMILY_LABELS: dict[str, dict[str, str]] = {
    "MN": {"ja": "マイナンバー利用事務系", "en": "My Number (MN)"},
    "LG": {"ja": "LGWAN接続系", "en": "LGWAN-connected (LG)"},
    "IN": {"ja": "インターネット接続系", "en": "Internet-connected (IN)"},
    "SZ": {"ja": "無害化ゾーン", "en": "Sanitization zone (SZ)"},
    "public": {"ja": "インターネット", "en": "Public Internet"},
}

SEVERITY_LABELS: dict[str, dict[str, str]] = {
    "critical": {"ja": "重大", "en": "critical"},
    "high": {"ja": "高", "en": "high"},
    "medium": {"ja": "中", "en": "medium"},
    "low": {"ja": "低", "en": "low"},
    "info": {"ja": "参考", "en": "info"},
}

CHANNEL_KIND_LABELS: dict[str, dict[str, str]] = {
    "screen-transfer": {"ja": "画面転送", "en": "screen transfer"},
    "mail-text": {"ja": "メール無害化（テキスト化）", "en": "mail to text"},
    "file-sanitization": {"ja": "ファイル無害化", "en": "file sanitization"},
    "cloud-direct": {"ja": "特定クラウドへの直接接続", "en": "direct to named cloud services"},
}

MODEL_LABELS: dict[str, dict[str, str]] = {
    "alpha": {"ja": "αモデル", "en": "α model"},
    "alpha-prime": {"ja": "α'モデル", "en": "α' model"},
    "beta": {"ja": "βモデル", "en": "β model"},
    "beta-prime": {"ja": "β'モデル", "en": "β' model"},
}

# What each model permits, worded for the report (three-tier-model.md, "The models").
MODEL_PERMITS_TEXT: dict[str, list[dict[str, str]]] = {
    "common": [
        {"ja": "マイナンバー利用事務系 ⇔ LGWAN接続系: 住民基本台帳ネットワークシステム・中間サーバー等、"
               "特定のアドレスとポートに限定した例外のみ",
         "en": "MN ⇔ LG: only narrow exceptions (住基ネット, 中間サーバー) naming single addresses and explicit ports"},
        {"ja": "マイナンバー利用事務系 ⇔ インターネット接続系・無害化ゾーン: 一切の通信を認めない",
         "en": "MN ⇔ IN and MN ⇔ SZ: nothing, ever"},
        {"ja": "LGWAN接続系 ⇔ インターネット接続系、無害化ゾーンとの通信: 宣言された無害化通信（画面転送、"
               "メール本文のテキスト化、ファイルの無害化処理）のみ",
         "en": "LG ⇔ IN, and anything ⇔ SZ: only declared sanitized traffic (screen transfer, mail to text, "
               "file sanitization)"},
    ],
    "alpha": [
        {"ja": "画面転送はLGWAN接続系の端末からインターネット接続系のサーバー（仮想ブラウザ等）への方向のみ",
         "en": "Screen transfer only from LG-side clients to IN-side servers (virtual browser)"},
    ],
    "alpha-prime": [
        {"ja": "画面転送はLGWAN接続系の端末からインターネット接続系のサーバーへの方向のみ",
         "en": "Screen transfer only from LG-side clients to IN-side servers"},
        {"ja": "LGWAN接続系の端末から、個別に指定した特定のクラウドサービスへの直接接続（宛先・ポートを限定）",
         "en": "LG clients straight to named cloud services, listed address by address and port by port"},
    ],
    "beta": [
        {"ja": "画面転送は双方向（インターネット接続系の端末からLGWAN接続系のサーバーへの利用を含む）",
         "en": "Screen transfer in both directions (IN-side clients may use LG-side servers)"},
        {"ja": "βモデルの前提条件（人的セキュリティ対策、CSIRT、研修、監査、端末監視等）は監査人確認事項",
         "en": "The β preconditions (human security measures, CSIRT, training, audits, endpoint monitoring) are "
               "attestation items"},
    ],
    "beta-prime": [
        {"ja": "画面転送は双方向（インターネット接続系の端末からLGWAN接続系に残した業務システムへの利用を含む）",
         "en": "Screen transfer in both directions (IN-side clients may use the systems left in LG)"},
        {"ja": "β'モデルの前提条件（人的セキュリティ対策、CSIRT、研修、監査、端末監視等）は監査人確認事項",
         "en": "The β' preconditions (human security measures, CSIRT, training, audits, endpoint monitoring) are "
               "attestation items"},
    ],
}

VERDICT_LABELS: dict[str, dict[str, str]] = {
    "intra-family": {"ja": "同一系統内", "en": "intra-family"},
    "exception": {"ja": "例外", "en": "exception"},
    "channel": {"ja": "通信経路", "en": "channel"},
}


@dataclass(frozen=True)
class Policy:
    """The policy wording a finding code enforces: a verbatim quote (or None) with its clause, and a
    note (paraphrase of the guideline, or why the code matters for the audit)."""

    quote: str | None
    clause: dict[str, str]
    note: dict[str, str]


_MN = ("マイナンバー利用事務系においては、原則として、他の領域との通信をできないようにした上で、"
       "端末からの情報持ち出し不可設定や端末への多要素認証の導入等により、住民情報の流出を防ぐ")
_MN_CLAUSE = {"ja": "岡山市 抜粋版 第1章 6(3)ア、川口市 基本方針 第6条(3)ア",
              "en": "Okayama (excerpt) ch. 1, 6(3)a; Kawaguchi basic policy art. 6(3)a"}
_LG = ("LGWAN接続系においては、…インターネット接続系の情報システムとの通信経路を分割する。"
       "なお、両システム間で通信する場合、無害化通信を実施する")
_LG_CLAUSE = {"ja": "岡山市 抜粋版 第1章 6(3)イ、特別区人事・厚生事務組合 基本方針 6(3)ア",
              "en": "Okayama (excerpt) ch. 1, 6(3)b; Tokubetsu-ku association basic policy 6(3)a"}
_SANITIZED = ("インターネットメール本文のテキスト化や端末への画面転送等により、コンピュータウイルス等の不正プログラムの"
              "付着が無い等、安全が確保された通信")
_SANITIZED_CLAUSE = {"ja": "各市ポリシーにおける「無害化通信」の定義（条項は未記録）",
                     "en": "the policies' definition of 無害化通信 (clause not recorded)"}
_SPLIT = ("LGWAN接続系とインターネット接続系の両環境間の通信環境を分離した上で、"
          "安全が確保された通信だけを許可できるようにすること")
_SPLIT_CLAUSE = {"ja": "各市ポリシーにおける「通信経路の分割」の定義（条項は未記録）",
                 "en": "the policies' definition of 通信経路の分割 (clause not recorded)"}
_CLOUD = ("インターネット接続系においては、不正通信の監視機能の強化等の高度な情報セキュリティ対策を実施する…"
          "自治体情報セキュリティクラウドに参加する")
_CLOUD_CLAUSE = {"ja": "岡山市 抜粋版 第1章 6(3)ウ、川口市 基本方針 第6条(3)ウ",
                 "en": "Okayama (excerpt) ch. 1, 6(3)c; Kawaguchi basic policy art. 6(3)c"}
_AUDIT_CLAUSE = {"ja": "定期的な情報セキュリティ監査及び自己点検（例: 川口市 基本方針 第7条）",
                 "en": "regular security audits and self-inspection (e.g. Kawaguchi basic policy art. 7)"}
_EXC_NOTE = {"ja": "ガイドライン（要旨）: LGWANを経由する必要がある例外（住基ネット、中間サーバー）は、"
                   "特定のアドレス・ポートに限定して認められる。",
             "en": "The guideline (paraphrase) allows the exceptions that must travel over LGWAN (住基ネット, "
                   "中間サーバー) only for specific addresses and ports."}
_NONE: dict[str, str] = {"ja": "", "en": ""}

POLICY: dict[str, Policy] = {
    "MYNUMBER_ISOLATION": Policy(_MN, _MN_CLAUSE, _EXC_NOTE),
    "MYNUMBER_FLOW": Policy(_MN, _MN_CLAUSE, _EXC_NOTE),
    "EXCEPTION_TOO_BROAD": Policy(_MN, _MN_CLAUSE, _EXC_NOTE),
    "EXCEPTION_NOT_ALLOWED": Policy(_MN, _MN_CLAUSE, {
        "ja": "LGWAN接続系とインターネット接続系の間は例外ではなく無害化通信によること（岡山市 6(3)イ）。"
              "マイナンバー利用事務系とインターネット接続系・無害化ゾーンの間には、認められる形式がない。",
        "en": "LG ⇔ IN must use sanitized channels, not exceptions (Okayama 6(3)b); MN ⇔ IN and MN ⇔ SZ have no "
              "legal form."}),
    "LGWAN_INTERNET_UNSANITIZED": Policy(_LG, _LG_CLAUSE, {
        "ja": f"無害化通信の定義: 「{_SANITIZED}」（川口市はファイルの無害化処理を加える）",
        "en": "無害化通信 as the policies define it: mail reduced to text, screen transfer to the terminal "
              "(Kawaguchi adds file sanitization)."}),
    "UNSANITIZED_FLOW": Policy(_LG, _LG_CLAUSE, {
        "ja": f"無害化通信の定義: 「{_SANITIZED}」",
        "en": "無害化通信: mail to text, screen transfer, file sanitization."}),
    "FIREWALL_BYPASS": Policy(_SPLIT, _SPLIT_CLAUSE, {
        "ja": "マイナンバー利用事務系については岡山市 6(3)ア・川口市 第6条(3)ア"
              "「他の領域との通信をできないようにした上で」。高崎市は同じ原則をUSB等の記録媒体にも適用している（要旨）。",
        "en": "For MN, Okayama 6(3)a / Kawaguchi art. 6(3)a: 他の領域との通信をできないようにした上で. Takasaki "
              "applies the same principle to removable media (paraphrase)."}),
    "CHANNEL_NOT_ALLOWED_BY_MODEL": Policy("なお、両システム間で通信する場合、無害化通信を実施する", {
        "ja": "岡山市 抜粋版 第1章 6(3)イ", "en": "Okayama (excerpt) ch. 1, 6(3)b"}, {
        "ja": "どの無害化通信をどの方向で認めるかは、ガイドラインの令和2年12月改定（β・β'）及び令和6年10月改定（α'）に"
              "基づき団体が採用したモデルによる（要旨）。",
        "en": "Which sanitized traffic and which direction are acceptable depends on the model adopted under the "
              "guideline's December 2020 (β, β') and October 2024 (α') revisions (paraphrase)."}),
    "SECURITY_CLOUD_BYPASS": Policy(_CLOUD, _CLOUD_CLAUSE, _NONE),
    "UNKNOWN_ADDRESS": Policy(None, _AUDIT_CLAUSE, {
        "ja": "どの系統にも属さないアドレスは判定できず、監査証跡の欠落となる。",
        "en": "An address nobody can place is a gap in the audit evidence."}),
    "UNSUPPORTED_RULE": Policy(None, _AUDIT_CLAUSE, {
        "ja": "解析が近似となった箇所を明示する（近似は常に許可側に倒しているため、適合の判定は維持される）。",
        "en": "The report says where the analysis was approximate (always towards allowing, so a compliant "
              "verdict stays true)."}),
    "RULE_SHADOWED": Policy(None, {"ja": "自己点検", "en": "self-inspection"}, {
        "ja": "直接の規定はないが、ルールベースを点検可能な状態に保つため記載する。",
        "en": "No clause directly; it keeps the rule base auditable."}),
    "PROTOCOL_MISMATCH": Policy(_SANITIZED, _SANITIZED_CLAUSE, {
        "ja": "「端末への画面転送」では画面情報のみが通過し、ファイルは通過しない。",
        "en": "Screen transfer means pixels cross, not files."}),
    "MAIL_NOT_TEXT": Policy(_SANITIZED, _SANITIZED_CLAUSE, {
        "ja": "「インターネットメール本文のテキスト化」: 添付ファイル・HTMLを含まないこと。",
        "en": "Mail reduced to text: no attachment, no HTML."}),
    "FILE_NOT_SANITIZED": Policy(None, {"ja": "川口市: ファイルの無害化処理", "en": "Kawaguchi: file sanitization"}, {
        "ja": "実行ファイル、マクロ、PDFの能動的コンテンツを含まないこと。",
        "en": "No executable, no macros, no active PDF content."}),
    "DENIED_BUT_OBSERVED": Policy(_SPLIT, _SPLIT_CLAUSE, {
        "ja": "監査には、稼働中の構成が文書と一致していることが前提となる。",
        "en": "An audit needs configuration that matches reality."}),
    "CAPTURE_DAMAGED": Policy(None, _AUDIT_CLAUSE, {
        "ja": "読み取れなかった記録は判定されていない。", "en": "Records that could not be read were not judged."}),
}

# Conditions traffic cannot show (three-tier-model.md): the auditor ticks them.
ATTESTATION: list[dict[str, str]] = [
    {"ja": "マイナンバー利用事務系の端末に多要素認証が導入されている", "en": "MFA is in force on My Number terminals"},
    {"ja": "マイナンバー利用事務系の端末からUSBメモリ等への情報持ち出しができない設定になっている",
     "en": "My Number terminals cannot export data to USB or other removable media"},
    {"ja": "マイナンバー利用事務系で無線LANを使用していない", "en": "No wireless LAN in the My Number segment"},
    {"ja": "LGWAN接続系の無線LANは IEEE 802.1X による認証のみで接続できる",
     "en": "Wireless LAN on the LGWAN side admits only IEEE 802.1X-authenticated clients"},
    {"ja": "画面転送でクリップボード・ドライブ・プリンタのリダイレクトが無効になっている",
     "en": "Clipboard, drive and printer redirection are off in screen transfer"},
    {"ja": "同一のUSBメモリ等をマイナンバー系・LGWAN系・インターネット系の間で持ち回っていない（高崎市の規定に相当）",
     "en": "No USB medium is carried between the MN, LG and IN sides (as Takasaki's policy requires)"},
    {"ja": "トポロジファイルの内容がIPアドレス管理台帳・ネットワーク構成図・実機と一致している"
           "（複数のネットワークに接続された端末・サーバーを含む）",
     "en": "The topology file matches the IP address ledger, the network diagram and the devices (dual-homed "
           "hosts included)"},
]
ATTESTATION_BETA: list[dict[str, str]] = [
    {"ja": "β/β'モデルの前提となる人的セキュリティ対策（CSIRT の設置、職員研修、定期監査）が実施されている",
     "en": "The β/β' preconditions are met: human security measures (CSIRT, staff training, regular audits)"},
    {"ja": "インターネット接続系の端末に対する監視（EDR 等の端末監視）が実施されている",
     "en": "Endpoints on the Internet side are monitored (EDR or equivalent)"},
]
ATTESTATION_ALPHA_PRIME: list[dict[str, str]] = [
    {"ja": "直接接続するクラウドサービスについて、接続先とテナントの制限が設定されている",
     "en": "The cloud services reached directly are restricted by destination and tenant"},
]


def label(key: str, lang: str) -> str:
    """One label; a missing key is a programming error, caught by the tests for both languages."""
    return LABELS[key][lang]


def translations(lang: str) -> dict[str, str]:
    """All labels in one language, for the templates."""
    return {key: value[lang] for key, value in LABELS.items()}


def attestation_items(model: str, lang: str) -> list[str]:
    items = list(ATTESTATION)
    if model in ("beta", "beta-prime"):
        items += ATTESTATION_BETA
    if model == "alpha-prime":
        items += ATTESTATION_ALPHA_PRIME
    return [item[lang] for item in items]
