//! The 123pan drive's folders and files: mkdir, the paged list, detail, infos, the
//! download URL with `Range`, the move to the trash, downloads landing in folders, and
//! the request shapes real clients send (`null` options, IDs as strings, empty query
//! values).

mod common;

use common::*;
use serde_json::{json, Value};

const CREATE: &str = "/api/v1/offline/download";
const PROCESS: &str = "/api/v1/offline/download/process";

async fn mkdir(s: &Pan123, parent: Value, name: &str) -> u64 {
    let answer = s
        .post(
            "/upload/v1/file/mkdir",
            &json!({"name": name, "parentID": parent}),
        )
        .await;
    answer.data()["dirID"]
        .as_u64()
        .unwrap_or_else(|| panic!("mkdir {name}: {:?}", answer.data()))
}

/// Every entry of a folder, following `lastFileId` with pages of `limit`.
async fn list_all(s: &Pan123, folder: u64, limit: u32) -> (Vec<Value>, usize) {
    let mut entries = Vec::new();
    let mut last = 0i64;
    let mut pages = 0;
    loop {
        let page = s
            .get(&format!(
                "/api/v2/file/list?parentFileId={folder}&limit={limit}&lastFileId={last}&searchMode=&searchData=&trashed=false"
            ))
            .await;
        pages += 1;
        let data = page.data().clone();
        entries.extend(data["fileList"].as_array().unwrap().iter().cloned());
        last = data["lastFileId"].as_i64().unwrap();
        if last == -1 {
            return (entries, pages);
        }
        assert!(pages < 100, "paging does not end");
    }
}

#[tokio::test(start_paused = true)]
async fn downloads_land_in_folders_that_list_detail_and_serve_their_bytes() {
    let s = pan123(relaxed_config()).await;
    let files = file_server().await;
    let url = files.url("/data.bin");

    // No dirID (sent as null, as Python clients do): the folder 来自:离线下载 at the root.
    let task = s
        .create(
            CREATE,
            &json!({"url": url, "dirID": null, "callBackUrl": null, "fileName": null}),
        )
        .await;
    let data = s.wait_final(PROCESS, task).await;
    assert_eq!(data["status"], 2, "{data}");
    let (root, _) = list_all(&s, 0, 100).await;
    assert_eq!(root.len(), 1, "{root:?}");
    assert_eq!(root[0]["filename"], "来自:离线下载");
    assert_eq!(root[0]["type"], 1);
    let offline = root[0]["fileId"].as_u64().unwrap();
    let (inside, _) = list_all(&s, offline, 100).await;
    assert_eq!(inside.len(), 1);
    let entry = &inside[0];
    assert_eq!(entry["filename"], "data.bin");
    assert_eq!(entry["type"], 0);
    assert_eq!(entry["size"], 300_000);
    assert_eq!(entry["trashed"], 0);
    assert_eq!(entry["parentFileId"], offline);
    let expected_md5 = {
        use md5::Digest;
        md5::Md5::digest(pattern(300_000))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(entry["etag"], expected_md5.as_str());

    // A folder by mkdir, its parentID as a string (as OpenList sends it), a download
    // into it with dirID as a string; the same name twice is stored renamed.
    let movies = mkdir(&s, json!(0), "Movies").await;
    let year = mkdir(&s, json!(movies.to_string()), "2026").await;
    for _ in 0..2 {
        let task = s
            .create(
                CREATE,
                &json!({"url": url, "dirID": year.to_string(), "fileName": "a.bin"}),
            )
            .await;
        assert_eq!(s.wait_final(PROCESS, task).await["status"], 2);
    }
    let (names, _) = list_all(&s, year, 100).await;
    let names: Vec<&str> = names
        .iter()
        .map(|e| e["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.bin", "a(1).bin"]);
    let file = s.snapshot(task_of(&s, "a(1).bin"));
    assert_eq!(file.drive_path.as_deref(), Some("/Movies/2026/a(1).bin"));
    let file_id = file.file_id.unwrap();

    // A taken folder name is code 1 with the service's message.
    s.post(
        "/upload/v1/file/mkdir",
        &json!({"name": "Movies", "parentID": 0}),
    )
    .await
    .fails_with(1, "已经有同名文件夹");

    // Detail (capital ID spelling), a folder's size is its contents'.
    let detail = s.get(&format!("/api/v1/file/detail?fileID={movies}")).await;
    assert_eq!(detail.data()["fileID"], movies);
    assert_eq!(detail.data()["type"], 1);
    assert_eq!(detail.data()["size"], 600_000);
    assert_eq!(detail.data()["parentFileID"], 0);
    s.get("/api/v1/file/detail?fileID=999")
        .await
        .fails_with(5066, "文件不存在");

    // Infos: the known IDs, in the order asked.
    let infos = s
        .post(
            "/api/v1/file/infos",
            &json!({"fileIds": [file_id, 999, movies]}),
        )
        .await;
    let ids: Vec<u64> = infos.data()["fileList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["fileId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [file_id, movies]);

    // The download URL serves the bytes, whole and by range.
    let link = s
        .get(&format!("/api/v1/file/download_info?fileId={file_id}"))
        .await;
    let link = link.data()["downloadUrl"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&s.emu.base_url()), "{link}");
    let whole = fetch(&link, None).await;
    assert_eq!(whole.0, 200);
    assert_eq!(whole.1, pattern(300_000));
    let part = fetch(&link, Some("bytes=100-199")).await;
    assert_eq!(part.0, 206);
    assert_eq!(part.1, pattern(300_000)[100..200]);
    let tail = fetch(&link, Some("bytes=-10")).await;
    assert_eq!(tail.1, pattern(300_000)[299_990..]);
    assert_eq!(fetch(&link, Some("bytes=300000-")).await.0, 416);
    let unknown = format!("{}/_download/nope/a.bin", s.emu.base_url());
    assert_eq!(fetch(&unknown, None).await.0, 404);
    s.get(&format!("/api/v1/file/download_info?fileId={movies}"))
        .await
        .fails_with(5066, "文件不存在");
}

const TRASH: &str = "/api/v1/file/trash";

/// The entry of `id` as the list of `folder` answers it.
async fn listed(s: &Pan123, folder: u64, id: u64) -> Value {
    let (entries, _) = list_all(s, folder, 100).await;
    entries
        .into_iter()
        .find(|e| e["fileId"] == id)
        .unwrap_or_else(|| panic!("{id} is listed in {folder}"))
}

#[tokio::test(start_paused = true)]
async fn a_downloaded_file_trashed_stays_listed_flagged_and_serves_no_bytes() {
    let s = pan123(relaxed_config()).await;
    let files = file_server().await;
    let url = files.url("/data.bin");
    let folder = mkdir(&s, json!(0), "done").await;
    let task = s
        .create(
            CREATE,
            &json!({"url": url, "dirID": folder, "fileName": "a.bin"}),
        )
        .await;
    assert_eq!(s.wait_final(PROCESS, task).await["status"], 2);
    let file_id = s.snapshot(task).file_id.unwrap();
    let keep = mkdir(&s, json!(folder), "keep").await;
    let early = s
        .get(&format!("/api/v1/file/download_info?fileId={file_id}"))
        .await;
    let early = early.data()["downloadUrl"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&early, None).await.0, 200);

    // The vendor's body; the answer is the vendor's `data: null`.
    let trashed = s.post(TRASH, &json!({"fileIDs": [file_id]})).await;
    assert_eq!(trashed.code(), 0, "{trashed:?}");
    assert_eq!(trashed.message(), "ok");
    assert!(trashed.data().is_null(), "{trashed:?}");

    // Still listed, and in infos and detail, flagged; the folder beside it is not.
    assert_eq!(listed(&s, folder, file_id).await["trashed"], 1);
    assert_eq!(listed(&s, folder, keep).await["trashed"], 0);
    let infos = s
        .post("/api/v1/file/infos", &json!({"fileIds": [file_id, keep]}))
        .await;
    let list = infos.data()["fileList"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0]["fileId"].as_u64(), &list[0]["trashed"]),
        (Some(file_id), &json!(1))
    );
    assert_eq!(list[1]["trashed"], 0);
    let detail = s
        .get(&format!("/api/v1/file/detail?fileID={file_id}"))
        .await;
    assert_eq!(detail.data()["trashed"], 1);

    // Its bytes: no new download URL, and the one handed out before serves nothing.
    s.get(&format!("/api/v1/file/download_info?fileId={file_id}"))
        .await
        .fails_with(5066, "文件不存在");
    assert_eq!(fetch(&early, None).await.0, 404);

    // Trashing it again is no error; an ID as a string is read as the others are.
    let again = s
        .post(TRASH, &json!({"fileIDs": [file_id.to_string()]}))
        .await;
    assert_eq!(again.code(), 0, "{again:?}");

    // One unknown ID refuses the whole call, and trashes nothing.
    s.post(TRASH, &json!({"fileIDs": [keep, 424_242]}))
        .await
        .fails_with(5066, "424242");
    assert_eq!(listed(&s, folder, keep).await["trashed"], 0);

    // Refused as the description says: no ID, more than 100, no body field.
    s.post(TRASH, &json!({"fileIDs": []}))
        .await
        .fails_with(400, "fileIDs");
    let many: Vec<u64> = (0..101).map(|_| keep).collect();
    s.post(TRASH, &json!({ "fileIDs": many }))
        .await
        .fails_with(400, "fileIDs");
    s.post(TRASH, &json!({})).await.fails_with(400, "fileIDs");

    // A trashed folder takes what is under it out of reach too.
    let inner = s
        .create(
            CREATE,
            &json!({"url": url, "dirID": keep, "fileName": "b.bin"}),
        )
        .await;
    assert_eq!(s.wait_final(PROCESS, inner).await["status"], 2);
    let inner_id = s.snapshot(inner).file_id.unwrap();
    assert_eq!(s.post(TRASH, &json!({"fileIDs": [keep]})).await.code(), 0);
    s.get(&format!("/api/v1/file/download_info?fileId={inner_id}"))
        .await
        .fails_with(5066, "文件不存在");
}

/// The task whose stored file got `name`.
fn task_of(s: &Pan123, name: &str) -> u64 {
    s.emu
        .tasks()
        .iter()
        .find(|t| {
            t.drive_path
                .as_deref()
                .is_some_and(|p| p.ends_with(&format!("/{name}")))
        })
        .map(|t| t.id.0)
        .expect("a task stored that name")
}

/// `GET url` (with a `Range` header): status and body.
async fn fetch(url: &str, range: Option<&str>) -> (u16, Vec<u8>) {
    use http_body_util::BodyExt;
    let mut req = http::Request::get(url);
    if let Some(r) = range {
        req = req.header(http::header::RANGE, r);
    }
    let resp = http_client()
        .request(req.body(http_body_util::Full::default()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

#[tokio::test(start_paused = true)]
async fn pages_end_with_minus_one_and_trashed_entries_are_listed_flagged() {
    let s = pan123(relaxed_config()).await;
    let parent = mkdir(&s, json!(0), "many").await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(mkdir(&s, json!(parent), &format!("d{i}")).await);
    }
    assert!(s.emu.trash_file(made[2]));
    let (entries, pages) = list_all(&s, parent, 3).await;
    assert_eq!(pages, 3);
    let ids: Vec<u64> = entries
        .iter()
        .map(|e| e["fileId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, made);
    assert_eq!(entries[2]["trashed"], 1);
    assert_eq!(entries[1]["trashed"], 0);

    // An exact search over the whole drive.
    let found = s
        .get("/api/v2/file/list?parentFileId=0&limit=100&searchData=d4&searchMode=1")
        .await;
    let found = found.data()["fileList"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["fileId"], made[4]);

    // Refusals: a limit over 100, an unknown folder, a bad ID.
    s.get("/api/v2/file/list?parentFileId=0&limit=101")
        .await
        .fails_with(400, "limit");
    s.get("/api/v2/file/list?parentFileId=12345&limit=10")
        .await
        .fails_with(5066, "文件不存在");
    s.post(
        "/upload/v1/file/mkdir",
        &json!({"name": "x", "parentID": "12a"}),
    )
    .await
    .fails_with(400, "parentID");
}

#[tokio::test(start_paused = true)]
async fn a_download_into_an_unknown_folder_or_the_root_is_refused() {
    let s = pan123(relaxed_config()).await;
    let files = file_server().await;
    let url = files.url("/data.bin");
    s.post(CREATE, &json!({"url": url, "dirID": 77}))
        .await
        .fails_with(5066, "not a folder");
    s.post(CREATE, &json!({"url": url, "dirID": 0}))
        .await
        .fails_with(400, "root");
    assert!(s.emu.tasks().is_empty());
}
